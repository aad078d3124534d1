"""Forecast-vs-actual plot of a backtest (matplotlib, written atomically as PNG)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from lstmcast.files import atomic_write

MAX_PANELS = 8
MAX_POINTS = 500  # the last stretch of the test split, so lines stay readable


def plot_forecasts(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """One panel per variable: actual, the model's one-step-ahead forecast and repeat_last,
    over the last points of the split, from a `Forecaster.forecast_table` frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first_step = table[table["step"] == 1]
    variables = list(dict.fromkeys(first_step["variable"]))[:MAX_PANELS]
    fig, axes = plt.subplots(len(variables), 1, figsize=(11, 2.4 * len(variables)), squeeze=False)
    for ax, variable in zip(axes[:, 0], variables, strict=True):
        rows = first_step[first_step["variable"] == variable].tail(MAX_POINTS)
        ax.plot(rows["time"], rows["actual"], label="actual", color="black", linewidth=1.0)
        ax.plot(rows["time"], rows["forecast"], label="forecast (step 1)", linewidth=1.0)
        ax.plot(rows["time"], rows["repeat_last"], label="repeat_last", linewidth=0.8, alpha=0.6)
        ax.set_ylabel(str(variable))
    axes[0, 0].legend(loc="upper left", fontsize="small")
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    target = Path(path)
    atomic_write(target, buffer.getvalue())
    return target
