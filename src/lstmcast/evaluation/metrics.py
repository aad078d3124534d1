"""Forecast accuracy metrics on plain NumPy arrays, returned as JSON-safe dicts.

Shapes used throughout:
    N  windows (forecast origins)
    H  horizon steps (step 1 is the first forecast step)
    V  target variables (columns)

`forecast_metrics` scores `(N, H, V)` forecasts three ways (overall, per variable, per
horizon step). Every number it returns is a plain Python `float`/`int`, and a metric that is
undefined (e.g. MAPE when every actual is zero) is `None`, never NaN, so the result can go
straight into `json.dumps(..., allow_nan=False)`.

All sums are accumulated in float64, whatever the input dtype (models emit float32).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmcast.errors import ConfigError

__all__ = [
    "as_finite64",
    "check_columns",
    "forecast_metrics",
    "json_float",
    "naive_one_step_mae",
    "skill_score",
]

# One summary block: mse, mae, rmse, mape, mape_zeros_skipped, smape, mase,
# directional_accuracy, n.
Summary = dict[str, float | int | None]


def naive_one_step_mae(values: npt.ArrayLike) -> np.ndarray:
    """In-sample MAE of the one-step naive forecast `x_t = x_{t-1}`, per column.

    `values` is `(T, V)` with `T >= 2` (normally the training rows of the targets). Returns a
    float64 array `(V,)`. A constant column gives 0; `forecast_metrics` then reports that
    column's MASE as `None` rather than dividing by zero.
    """
    x = as_finite64(values, "values")
    if x.ndim != 2:
        raise ConfigError(
            f"The 'values' argument must be a 2-D array (T, V). Got shape {x.shape} instead."
        )
    if x.shape[0] < 2:
        raise ConfigError(
            f"The 'values' argument needs at least 2 rows for a one-step naive forecast. "
            f"Got {x.shape[0]} instead."
        )
    return np.abs(np.diff(x, axis=0)).mean(axis=0)  # (T-1, V) -> (V,)


def pooled_naive_mae(pieces: Sequence[np.ndarray]) -> np.ndarray:
    """`naive_one_step_mae` over several series' rows `pieces` ((T_i, V) each), pooled: the
    mean of every one-step difference, never one across two series."""
    if len(pieces) == 1:
        return naive_one_step_mae(pieces[0])
    diffs = [np.abs(np.diff(np.asarray(p, dtype=np.float64), axis=0)) for p in pieces]
    return np.concatenate(diffs).mean(axis=0)


def skill_score(model_mse: float, naive_mse: float) -> float | None:
    """Skill against a reference: `1 - model_mse / naive_mse` (1 is perfect, 0 is no better
    than the reference, negative is worse). `None` when `naive_mse` is 0."""
    if naive_mse == 0:
        return None
    return json_float(1.0 - float(model_mse) / float(naive_mse))


def against_best(
    mse: dict[str, float | None], baselines: Sequence[str]
) -> tuple[str, float | None]:
    """The baseline with the lowest MSE (a missing or non-finite one counts as the worst) and
    the model's skill against it; `mse` holds "model" and each of `baselines`."""
    best = min(baselines, key=lambda n: _finite_or_inf(mse[n]))
    model, reference = mse["model"], mse[best]
    if model is None or reference is None:
        return best, None
    return best, skill_score(model, reference)


def _finite_or_inf(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else math.inf


def forecast_metrics(
    actual: npt.ArrayLike,
    predicted: npt.ArrayLike,
    last_observed: npt.ArrayLike,
    naive_mae: npt.ArrayLike | None = None,
    columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score `(N, H, V)` forecasts against `(N, H, V)` actuals.

    `last_observed` is `(N, V)`: the last input value of each window, used as the origin for
    directional accuracy. `naive_mae` is `(V,)` from `naive_one_step_mae` (the MASE scale);
    without it every `mase` is `None`. `columns` names the V variables (default "0", "1", ...).

    Returns `{"overall": {...}, "per_variable": {column: {...}}, "per_horizon": [{...}] * H}`,
    each block holding:

    - `mse`, `mae`, `rmse`;
    - `mape`: mean of `100 * |p - a| / |a|` over cells with `a != 0` (`None` if none), and
      `mape_zeros_skipped`: how many cells were left out because `a == 0`;
    - `smape`: mean of `200 * |p - a| / (|a| + |p|)`, a cell with `a == p == 0` scoring 0;
    - `mase`: per variable `mae / naive_mae`; overall and per horizon the mean of the
      per-variable ratios over variables whose `naive_mae > 0` (`None` if there are none);
    - `directional_accuracy`: over cells whose actual change from `last_observed` is non-zero,
      the fraction where the predicted change has the same sign (a zero predicted change is
      wrong); `None` if no cell moved, or if the forecast predicts no change in any of them
      (repeat_last: it calls no direction, so it has no hit rate);
    - `n`: the number of cells in the block.
    """
    a = as_finite64(actual, "actual")
    p = as_finite64(predicted, "predicted")
    last = as_finite64(last_observed, "last_observed")
    if a.ndim != 3 or min(a.shape) < 1:
        raise ConfigError(
            f"The 'actual' argument must be a non-empty 3-D array (N, H, V). "
            f"Got shape {a.shape} instead."
        )
    n_windows, horizon, n_vars = a.shape
    if p.shape != a.shape:
        raise ConfigError(
            f"The 'predicted' argument must have the shape of 'actual' {a.shape}. "
            f"Got {p.shape} instead."
        )
    if last.shape != (n_windows, n_vars):
        raise ConfigError(
            f"The 'last_observed' argument must have shape (N, V) = {(n_windows, n_vars)}. "
            f"Got {last.shape} instead."
        )
    scale = _check_naive_mae(naive_mae, n_vars)
    names = check_columns(columns, n_vars)

    cells = _Cells.build(a, p, last)

    # MASE: mean absolute error per variable (and per step and variable) over the scale.
    mase_v: np.ndarray | None = None  # (V,)   NaN where the scale is 0
    mase_hv: np.ndarray | None = None  # (H, V) NaN where the scale is 0
    if scale is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            safe = np.where(scale > 0, scale, np.nan)
            mase_v = cells.abs_err.mean(axis=(0, 1)) / safe
            mase_hv = cells.abs_err.mean(axis=0) / safe

    overall = cells.summary((slice(None), slice(None), slice(None)), _nanmean(mase_v))
    per_variable = {
        name: cells.summary(
            (slice(None), slice(None), v), None if mase_v is None else json_float(mase_v[v])
        )
        for v, name in enumerate(names)
    }
    per_horizon = [
        cells.summary(
            (slice(None), h, slice(None)), None if mase_hv is None else _nanmean(mase_hv[h])
        )
        for h in range(horizon)
    ]
    return {"overall": overall, "per_variable": per_variable, "per_horizon": per_horizon}


@dataclass(frozen=True)
class _Cells:
    """Per-cell error terms, all `(N, H, V)` float64 or bool, computed once."""

    abs_err: np.ndarray  # |p - a|
    sq_err: np.ndarray  # (p - a)^2
    ape: np.ndarray  # 100 |p - a| / |a|, 0 where a == 0 (excluded via ape_ok)
    ape_ok: np.ndarray  # a != 0
    sape: np.ndarray  # 200 |p - a| / (|a| + |p|), 0 where both are 0
    moved: np.ndarray  # actual change from last_observed is non-zero
    called: np.ndarray  # moved and the predicted change is non-zero
    hit: np.ndarray  # moved and sign(predicted change) == sign(actual change)

    @classmethod
    def build(cls, a: np.ndarray, p: np.ndarray, last: np.ndarray) -> _Cells:
        err = p - a
        abs_err = np.abs(err)
        abs_a = np.abs(a)
        denom = abs_a + np.abs(p)
        ape_ok = a != 0
        # A near-zero actual can overflow its APE to inf; the summary then reports None.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ape = np.where(ape_ok, 100.0 * abs_err / abs_a, 0.0)
            sape = np.where(denom > 0, 200.0 * abs_err / denom, 0.0)
        actual_change = a - last[:, None, :]  # (N, H, V) - (N, 1, V)
        predicted_change = p - last[:, None, :]
        moved = actual_change != 0
        called = moved & (predicted_change != 0)
        hit = moved & (np.sign(predicted_change) == np.sign(actual_change))
        return cls(abs_err, err * err, ape, ape_ok, sape, moved, called, hit)

    def summary(self, sel: tuple[slice | int, ...], mase: float | None) -> Summary:
        """Metrics over the cells picked by the index `sel`; `mase` is computed by the caller."""
        n = int(self.abs_err[sel].size)
        mse = float(self.sq_err[sel].mean())
        n_ape = int(self.ape_ok[sel].sum())
        n_moved = int(self.moved[sel].sum())
        # a forecast that never moves (repeat_last) has no direction to score, not a score of 0
        calls = bool(self.called[sel].any())
        return {
            "mse": json_float(mse),
            "mae": json_float(self.abs_err[sel].mean()),
            "rmse": json_float(math.sqrt(mse)),
            "mape": json_float(self.ape[sel].sum() / n_ape) if n_ape else None,
            "mape_zeros_skipped": n - n_ape,
            "smape": json_float(self.sape[sel].mean()),
            "mase": mase,
            "directional_accuracy": (
                json_float(self.hit[sel].sum() / n_moved) if n_moved and calls else None
            ),
            "n": n,
        }


def as_finite64(x: npt.ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ConfigError(
            f"The '{name}' argument must contain only finite numbers. "
            f"Got {int(np.size(arr) - np.isfinite(arr).sum())} NaN/inf value(s)."
        )
    return arr


def _check_naive_mae(naive_mae: npt.ArrayLike | None, n_vars: int) -> np.ndarray | None:
    if naive_mae is None:
        return None
    scale = as_finite64(naive_mae, "naive_mae")
    if scale.shape != (n_vars,):
        raise ConfigError(
            f"The 'naive_mae' argument must have shape (V,) = ({n_vars},). "
            f"Got {scale.shape} instead."
        )
    if np.any(scale < 0):
        raise ConfigError(
            f"The 'naive_mae' argument must be >= 0 everywhere. Got {scale.tolist()} instead."
        )
    return scale


def check_columns(columns: Sequence[str] | None, n_vars: int) -> list[str]:
    if columns is None:
        return [str(v) for v in range(n_vars)]
    names = [str(c) for c in columns]
    if len(names) != n_vars:
        raise ConfigError(
            f"The 'columns' argument must name all {n_vars} variables. "
            f"Got {len(names)} names: {names}."
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"The 'columns' argument must hold unique names. Got {names}.")
    return names


def _nanmean(x: np.ndarray | None) -> float | None:
    """Mean of the finite entries, or None if there are none (or no array)."""
    if x is None:
        return None
    finite = x[np.isfinite(x)]
    return json_float(finite.mean()) if finite.size else None


def json_float(x: Any) -> float | None:
    """A plain Python float, or None for NaN/inf (keeps the output JSON-safe)."""
    value = float(x)
    return value if math.isfinite(value) else None
