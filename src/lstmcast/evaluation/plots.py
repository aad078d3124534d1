"""Plots of forecasts (matplotlib, written atomically as PNG): the test split against the
actual values at one horizon step, and the future after the last observed rows, both with
their prediction intervals when there are any."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from lstmcast.files import atomic_write

MAX_PANELS = 8
MAX_POINTS = 500  # the last stretch of the test split, so lines stay readable
HISTORY = 200  # observed rows shown before the future forecast


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _levels(columns: Any, prefix: str = "lower_") -> list[str]:
    """The level names of the band columns ('80', '95'), widest first."""
    names = [c[len(prefix) :] for c in columns if str(c).startswith(prefix)]
    return sorted(names, key=float, reverse=True)


def _save(fig: Any, path: str | Path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    target = Path(path)
    atomic_write(target, buffer.getvalue())
    return target


def _draw_bands(ax: Any, x: Any, lower: list[Any], upper: list[Any], levels: list[str]) -> None:
    """Shaded bands, the widest (listed first) lightest."""
    for k, (low, high, level) in enumerate(zip(lower, upper, levels, strict=True)):
        ax.fill_between(
            x,
            low,
            high,
            color="tab:blue",
            alpha=0.12 + 0.12 * k,
            linewidth=0,
            label=f"{level}% interval",
        )


def plot_forecasts(table: pd.DataFrame, path: str | Path, title: str = "", step: int = 1) -> Path:
    """One panel per variable: actual, the model's `step`-ahead forecast (with its bands) and
    repeat_last, over the last points of the split, from a `Forecaster.forecast_table` frame."""
    plt = _pyplot()
    at_step = table[table["step"] == step]
    variables = list(dict.fromkeys(at_step["variable"]))[:MAX_PANELS]
    levels = _levels(table.columns)
    fig, axes = plt.subplots(len(variables), 1, figsize=(11, 2.4 * len(variables)), squeeze=False)
    for ax, variable in zip(axes[:, 0], variables, strict=True):
        rows = at_step[at_step["variable"] == variable].tail(MAX_POINTS)
        lows = [rows[f"lower_{level}"] for level in levels]
        highs = [rows[f"upper_{level}"] for level in levels]
        _draw_bands(ax, rows["time"], lows, highs, levels)
        ax.plot(rows["time"], rows["actual"], label="actual", color="black", linewidth=1.0)
        ax.plot(rows["time"], rows["forecast"], label=f"forecast (step {step})", linewidth=1.0)
        ax.plot(rows["time"], rows["repeat_last"], label="repeat_last", linewidth=0.8, alpha=0.6)
        ax.set_ylabel(str(variable))
    axes[0, 0].legend(loc="upper left", fontsize="small")
    if title:
        axes[0, 0].set_title(title)
    return _save(fig, path)


def plot_future(
    history: pd.DataFrame, forecast: pd.DataFrame, path: str | Path, title: str = ""
) -> Path:
    """One panel per target: the last observed rows (`history`, indexed like `forecast`) and
    the forecast after them (`Forecaster.predict`'s frame), with its bands."""
    plt = _pyplot()
    targets = [c for c in forecast.columns if "_lower_" not in c and "_upper_" not in c]
    targets = targets[:MAX_PANELS]
    fig, axes = plt.subplots(len(targets), 1, figsize=(11, 2.4 * len(targets)), squeeze=False)
    for ax, target in zip(axes[:, 0], targets, strict=True):
        past = history[target].tail(HISTORY)
        ax.plot(past.index, past.to_numpy(), color="black", linewidth=1.0, label="observed")
        levels = _levels(forecast.columns, f"{target}_lower_")
        lows = [forecast[f"{target}_lower_{level}"] for level in levels]
        highs = [forecast[f"{target}_upper_{level}"] for level in levels]
        _draw_bands(ax, forecast.index, lows, highs, levels)
        ax.plot(forecast.index, forecast[target], color="tab:blue", linewidth=1.2, label="forecast")
        ax.set_ylabel(str(target))
    axes[0, 0].legend(loc="upper left", fontsize="small")
    if title:
        axes[0, 0].set_title(title)
    return _save(fig, path)


def plot_backtest(
    table: pd.DataFrame,
    path: str | Path,
    title: str = "",
    id_col: str | None = None,
    step: int = 1,
) -> Path:
    """From a backtest's forecast table: the mean absolute error of each origin through time
    (model and repeat_last, one colour per fold; over the series, with `id_col`), and the
    forecasts `step` steps ahead over the actual values of the first target (of the first
    series), fold boundaries marked."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6))
    frame = table.assign(
        error=(table["forecast"] - table["actual"]).abs(),
        naive_error=(table["repeat_last"] - table["actual"]).abs(),
    )
    per_origin = frame.groupby(["fold", "origin"], sort=False)[["error", "naive_error"]].mean()
    for fold, rows in per_origin.groupby(level="fold", sort=False):
        origins = rows.index.get_level_values("origin")
        top.plot(origins, rows["error"], linewidth=0.8, label=f"fold {fold}")
        top.plot(origins, rows["naive_error"], linewidth=0.6, color="grey", alpha=0.5)
    top.set_ylabel("MAE per origin")
    top.legend(loc="upper left", fontsize="small", ncol=4)
    first = table["target"].iloc[0]
    shown = table[(table["step"] == step) & (table["target"] == first)]
    label = str(first)
    if id_col is not None:
        one = shown[id_col].iloc[0]
        shown, label = shown[shown[id_col] == one], f"{first} of {one}"
    bottom.plot(shown["origin"], shown["actual"], color="black", linewidth=1.0, label="actual")
    bottom.plot(shown["origin"], shown["forecast"], linewidth=1.0, label=f"forecast (step {step})")
    for _fold, rows in shown.groupby("fold", sort=False):
        bottom.axvline(rows["origin"].iloc[0], color="grey", linewidth=0.5, linestyle="--")
    bottom.set_ylabel(label)
    bottom.legend(loc="upper left", fontsize="small")
    if title:
        top.set_title(title)
    return _save(fig, path)
