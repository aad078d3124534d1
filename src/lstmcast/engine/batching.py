"""Batches gathered by index from the one on-device series tensor (no DataLoader, no copies
of the window array): a batch of window starts becomes (B, L, F) inputs and (B, H, V) targets."""

from __future__ import annotations

import numpy as np
import torch


def gather_inputs(series: torch.Tensor, starts: torch.Tensor, lookback: int) -> torch.Tensor:
    """Rows [s, s + L) of `series` (T, F) for every start s: (B, L, F)."""
    offsets = torch.arange(lookback, device=series.device)
    return series[starts[:, None] + offsets]  # (B, L, F)


def gather_targets(
    series: torch.Tensor, starts: torch.Tensor, lookback: int, horizon: int, n_targets: int
) -> torch.Tensor:
    """Rows [s + L, s + L + H) of the target columns for every start s: (B, H, V)."""
    offsets = torch.arange(lookback, lookback + horizon, device=series.device)
    return series[starts[:, None] + offsets, :n_targets]  # (B, H, V)


@torch.no_grad()
def predict_windows(
    model: torch.nn.Module,
    series: torch.Tensor,
    starts: np.ndarray | torch.Tensor,
    lookback: int,
    batch_size: int = 4096,
) -> np.ndarray:
    """Model forecasts for every window start, in large batches on the series' device:
    (N, H, V) float32 on the host."""
    was_training = model.training
    model.eval()
    starts_t = torch.as_tensor(starts, dtype=torch.long, device=series.device)
    outputs = [
        model(gather_inputs(series, starts_t[i : i + batch_size], lookback)).float()
        for i in range(0, len(starts_t), batch_size)
    ]
    model.train(was_training)
    if not outputs:
        return np.zeros((0, 0, 0), dtype=np.float32)
    return torch.cat(outputs).cpu().numpy()
