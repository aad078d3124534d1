"""Forecasts over every window of a split, beside the repeat-last baseline, and the report
(`metrics.json`) comparing them on the scaled data and in original units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.data import Scaler
from lstmcast.evaluation.intervals import (
    crps_from_quantiles,
    interval_metrics,
    interval_verdict,
)
from lstmcast.evaluation.metrics import forecast_metrics, skill_score


@dataclass
class Bands:
    """Central prediction intervals of N windows at K levels: (N, H, V, K) each, on the scaled
    data; the model's and repeat_last's own (conformal) band."""

    levels: tuple[float, ...]
    lower: np.ndarray
    upper: np.ndarray
    naive_lower: np.ndarray
    naive_upper: np.ndarray


@dataclass(frozen=True)
class Backtest:
    """Forecasts of one split. Arrays are (N windows, H steps, V targets); `last_*` is the
    last observed target row of each window (N, V); `bands` the intervals when asked for,
    `quantiles_scaled` (N, H, V, Q) a quantile head's forecasts at levels `taus`."""

    starts: np.ndarray
    lookback: int
    actual_scaled: np.ndarray
    predicted_scaled: np.ndarray
    last_scaled: np.ndarray
    scaler: Scaler
    bands: Bands | None = None
    quantiles_scaled: np.ndarray | None = None
    taus: tuple[float, ...] = ()

    @property
    def naive_scaled(self) -> np.ndarray:
        """repeat_last: the last observed value for every step."""
        return np.repeat(self.last_scaled[:, None, :], self.actual_scaled.shape[1], axis=1)

    def original(self, scaled: np.ndarray) -> np.ndarray:
        return self.scaler.inverse(scaled)

    def original_levels(self, scaled: np.ndarray) -> np.ndarray:
        """`original` for (N, H, V, K) arrays (the scaler works on the variable axis)."""
        return np.moveaxis(self.scaler.inverse(np.moveaxis(scaled, -1, 0)), 0, -1)


def make_backtest(
    scaled: np.ndarray,
    scaler: Scaler,
    starts: np.ndarray,
    lookback: int,
    horizon: int,
    n_targets: int,
    predicted: np.ndarray,
    bands: Bands | None = None,
    quantiles_scaled: np.ndarray | None = None,
    taus: tuple[float, ...] = (),
) -> Backtest:
    """The `Backtest` of forecasts already made for `starts`."""
    steps = starts[:, None] + lookback + np.arange(horizon)  # (N, H) row of each target
    actual = scaled[steps, :n_targets]  # (N, H, V)
    last = scaled[starts + lookback - 1, :n_targets]  # (N, V)
    return Backtest(
        starts, lookback, actual, predicted, last, scaler, bands, quantiles_scaled, taus
    )


def report(
    backtest: Backtest,
    columns: list[str],
    model_name: str,
    naive_mae_scaled: np.ndarray,
    naive_mae_original: np.ndarray,
) -> dict[str, Any]:
    """The evaluation report: the model and repeat_last side by side, plus the skill score."""
    sections = {}
    for name, scaled_pred in (
        ("model", backtest.predicted_scaled),
        ("repeat_last", backtest.naive_scaled),
    ):
        on_scale = forecast_metrics(
            backtest.actual_scaled, scaled_pred, backtest.last_scaled, naive_mae_scaled, columns
        )
        in_units = forecast_metrics(
            backtest.original(backtest.actual_scaled),
            backtest.original(scaled_pred),
            backtest.original(backtest.last_scaled),
            naive_mae_original,
            columns,
        )
        sections[name] = {
            "name": model_name if name == "model" else "repeat_last",
            "scaled": on_scale["overall"],
            "original": in_units["overall"],
            "per_variable": {
                column: {
                    "scaled": on_scale["per_variable"][column],
                    "original": in_units["per_variable"][column],
                }
                for column in columns
            },
            "per_horizon": {"scaled": on_scale["per_horizon"], "original": in_units["per_horizon"]},
        }
    model_mse = sections["model"]["scaled"]["mse"]
    naive_mse = sections["repeat_last"]["scaled"]["mse"]
    skill = skill_score(model_mse, naive_mse)
    beats = skill is not None and skill > 0
    verdict = (
        f"{model_name} beats repeat_last: skill {skill:.3f} (1 - model MSE / naive MSE)"
        if beats
        else f"{model_name} does NOT beat repeat_last (skill {_rounded(skill)}): "
        "predicting the last value is at least as good"
    )
    result = {
        "n_windows": len(backtest.starts),
        "model": sections["model"],
        "repeat_last": sections["repeat_last"],
        "skill": skill,
        "beats_naive": beats,
        "verdict": verdict,
    }
    if backtest.bands is not None:
        result["intervals"] = interval_report(backtest, columns)
    return result


def interval_report(backtest: Backtest, columns: list[str]) -> dict[str, Any]:
    """Coverage, width, interval score and pinball loss of each level for the model and for
    repeat_last's conformal band (original units, and overall on the scaled data), the CRPS
    from the quantiles each has, and one verdict line per level."""
    bands = backtest.bands
    if bands is None:
        raise ValueError("interval_report needs a Backtest with bands (forecast with intervals)")
    levels = list(bands.levels)
    actual = backtest.actual_scaled
    out: dict[str, Any] = {"levels": levels}
    for name, (low, high, point) in {
        "model": (bands.lower, bands.upper, backtest.predicted_scaled),
        "repeat_last": (bands.naive_lower, bands.naive_upper, backtest.naive_scaled),
    }.items():
        in_units = interval_metrics(
            backtest.original(actual),
            backtest.original_levels(low),
            backtest.original_levels(high),
            levels,
            columns,
        )
        on_scale = interval_metrics(actual, low, high, levels, columns)
        if name == "model" and backtest.quantiles_scaled is not None:
            taus, quantiles = list(backtest.taus), backtest.quantiles_scaled
        else:  # the band ends and the point forecast as the median
            taus, quantiles = _band_quantiles(levels, low, high, point)
        out[name] = {
            **in_units,
            "scaled": on_scale["overall"],
            "crps": crps_from_quantiles(
                backtest.original(actual), backtest.original_levels(quantiles), taus
            ),
            "crps_scaled": crps_from_quantiles(actual, quantiles, taus)["overall"],
        }
    out["verdict"] = interval_verdict(out["model"]["scaled"], out["repeat_last"]["scaled"])
    return out


def _band_quantiles(
    levels: list[float], low: np.ndarray, high: np.ndarray, point: np.ndarray
) -> tuple[list[float], np.ndarray]:
    """The quantile forecasts a set of central bands stands for, increasing: the lower ends
    (widest first), the point forecast as the median, the upper ends."""
    order = np.argsort(levels)[::-1]  # widest band first
    taus = [(1 - levels[k]) / 2 for k in order] + [0.5] + [(1 + levels[k]) / 2 for k in order[::-1]]
    arrays = [low[..., k] for k in order] + [point] + [high[..., k] for k in order[::-1]]
    return taus, np.stack(arrays, axis=-1)


def forecast_frame(
    backtest: Backtest, columns: list[str], time: pd.DatetimeIndex | None
) -> pd.DataFrame:
    """Long table: one row per window origin, step and variable, in original units."""
    n, horizon, n_vars = backtest.actual_scaled.shape
    origin_rows = backtest.starts + backtest.lookback - 1
    target_rows = origin_rows[:, None] + 1 + np.arange(horizon)  # (N, H)
    stamps = (lambda rows: time[rows]) if time is not None else (lambda rows: rows)
    frame = pd.DataFrame(
        {
            "origin": np.repeat(np.asarray(stamps(origin_rows)), horizon * n_vars),
            "time": np.repeat(np.asarray(stamps(target_rows.ravel())), n_vars),
            "step": np.tile(np.repeat(np.arange(1, horizon + 1), n_vars), n),
            "variable": np.tile(np.asarray(columns), n * horizon),
            "actual": backtest.original(backtest.actual_scaled).ravel(),
            "forecast": backtest.original(backtest.predicted_scaled).ravel(),
            "repeat_last": backtest.original(backtest.naive_scaled).ravel(),
        }
    )
    if backtest.bands is not None:
        lower = backtest.original_levels(backtest.bands.lower)
        upper = backtest.original_levels(backtest.bands.upper)
        for k, level in enumerate(backtest.bands.levels):
            frame[f"lower_{level_name(level)}"] = lower[..., k].ravel()
            frame[f"upper_{level_name(level)}"] = upper[..., k].ravel()
    return frame


def level_name(level: float) -> str:
    """0.8 -> '80', 0.975 -> '97.5': how a level names its columns."""
    return f"{round(level * 100, 4):g}"


def _rounded(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
