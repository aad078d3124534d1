"""Sliding windows over a (T, F) array as read-only strided views (no copy)."""

from __future__ import annotations

import numpy as np

from lstmcast.checks import check_int
from lstmcast.errors import DataError


def sliding_windows(
    values: np.ndarray, lookback: int, horizon: int, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Cut `values` (T, F) into input windows (N, L, F) and target windows (N, H, F).

    Window i reads input rows [i*stride, i*stride + L) and target rows
    [i*stride + L, i*stride + L + H): the targets start right after the inputs. Both results
    are read-only views of `values` (no copy), so a 2 GB series stays 2 GB; copy a batch
    (e.g. `torch.from_numpy(np.ascontiguousarray(x[idx]))`) before writing to it.
    """
    lookback = check_int("lookback", lookback)
    horizon = check_int("horizon", horizon)
    stride = check_int("stride", stride)
    if not isinstance(values, np.ndarray) or values.ndim != 2:
        shape = getattr(values, "shape", type(values).__name__)
        raise DataError(f"sliding_windows needs a 2-D array (rows, features); got shape {shape}")
    n_rows = values.shape[0]
    if n_rows < lookback + horizon:
        raise DataError(
            f"the series has {n_rows} rows but lookback {lookback} + horizon {horizon} needs "
            f"at least {lookback + horizon}; use more data or smaller --horizon/--lookback"
        )
    # sliding_window_view puts the window axis last: (N, F, L + H) -> swap to (N, L + H, F).
    windows = np.lib.stride_tricks.sliding_window_view(values, lookback + horizon, axis=0)
    windows = windows.swapaxes(1, 2)[::stride]  # (N, L + H, F), still a view
    return windows[:, :lookback, :], windows[:, lookback:, :]
