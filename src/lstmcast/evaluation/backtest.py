"""Forecasts over every window of a split, beside the repeat-last baseline, and the report
(`metrics.json`) comparing them on the scaled data and in original units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lstmcast.data import Scaler
from lstmcast.engine.batching import predict_windows
from lstmcast.evaluation.metrics import forecast_metrics, skill_score


@dataclass(frozen=True)
class Backtest:
    """Forecasts of one split. Arrays are (N windows, H steps, V targets); `last_*` is the
    last observed target row of each window (N, V)."""

    starts: np.ndarray
    lookback: int
    actual_scaled: np.ndarray
    predicted_scaled: np.ndarray
    last_scaled: np.ndarray
    scaler: Scaler

    @property
    def naive_scaled(self) -> np.ndarray:
        """repeat_last: the last observed value for every step."""
        return np.repeat(self.last_scaled[:, None, :], self.actual_scaled.shape[1], axis=1)

    def original(self, scaled: np.ndarray) -> np.ndarray:
        return self.scaler.inverse(scaled)


def run_backtest(
    model: nn.Module,
    scaled: np.ndarray,
    scaler: Scaler,
    starts: np.ndarray,
    lookback: int,
    horizon: int,
    n_targets: int,
    device: torch.device,
) -> Backtest:
    """Predict every window start of `scaled` (T, F) and collect the matching actual values."""
    series = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32)).to(device)
    predicted = predict_windows(model, series, starts, lookback)
    steps = starts[:, None] + lookback + np.arange(horizon)  # (N, H) row of each target
    actual = scaled[steps, :n_targets]  # (N, H, V)
    last = scaled[starts + lookback - 1, :n_targets]  # (N, V)
    return Backtest(starts, lookback, actual, predicted, last, scaler)


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
    return {
        "n_windows": len(backtest.starts),
        "model": sections["model"],
        "repeat_last": sections["repeat_last"],
        "skill": skill,
        "beats_naive": beats,
        "verdict": verdict,
    }


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
    return frame


def _rounded(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
