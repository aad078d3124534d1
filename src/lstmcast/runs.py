"""A run directory: what `lstmcast train` writes, shared by the CLI, `compare` and the demo.

runs/NAME/
  model.safetensors, config.json   the model (see lstmcast.io)
  metrics.json                     test-split metrics of the model and repeat_last, and skill
  forecast_test.csv                every test forecast beside the actual value and repeat_last
  forecast.png                     forecast vs actual plot
  run.json                         resolved config, library versions, training history
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from lstmcast.config import RunConfig
from lstmcast.forecaster import Forecaster
from lstmcast.io import atomic_write, save, versions, write_json


def train_run(
    data: Any, config: RunConfig, out_dir: str | Path | None, *, progress: bool = True
) -> dict[str, Any]:
    """Fit, evaluate on the test split, and (when `out_dir` is given) write the run there."""
    forecaster = Forecaster.from_config(config).fit(data, progress=progress)
    metrics = evaluate_run(forecaster, data)
    if out_dir is not None:
        write_run(forecaster, data, metrics, out_dir)
    return metrics


def evaluate_run(forecaster: Forecaster, data: Any) -> dict[str, Any]:
    """Test-split metrics of a fitted forecaster plus its training summary (metrics.json);
    warns on stderr when training diverged."""
    metrics = forecaster.evaluate(data, split="test")
    metrics["training"] = forecaster.training_.to_dict() | {"history": None}
    if forecaster.training_.stopped == "diverged":
        from rich.console import Console

        Console(stderr=True).print(
            f"[yellow]warning:[/] {forecaster.training_.message}", highlight=False
        )
    return metrics


def write_run(
    forecaster: Forecaster, data: Any, metrics: dict[str, Any], out_dir: str | Path
) -> None:
    """Write the run directory described at the top of this module."""
    config = forecaster.config
    directory = Path(out_dir)
    save(forecaster, directory)
    write_json(directory / "metrics.json", metrics)
    write_json(
        directory / "run.json",
        {
            "config": config.to_dict(),
            "versions": versions(),
            "device": str(forecaster.device_),
            "n_train_windows": forecaster.n_train_windows_,
            "split": dataclasses.asdict(forecaster.split_),
            "training": forecaster.training_.to_dict(),
        },
    )
    table = forecaster.forecast_table(data, split="test")
    atomic_write(directory / "forecast_test.csv", table.to_csv(index=False).encode())
    from lstmcast.plotting import plot_forecasts

    plot_forecasts(table, directory / "forecast.png", title=f"{config.model}: test split")


def compare_models(
    data: Any,
    base: RunConfig,
    names: list[str],
    out_dir: str | Path | None,
    *,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train every model in `names` with the same data, split and training options."""
    rows = []
    for name in names:
        config = dataclasses.replace(base, model=name)
        started = time.perf_counter()
        run_dir = Path(out_dir) / name if out_dir is not None else None
        metrics = train_run(data, config, run_dir, progress=progress)
        model = metrics["model"]
        rows.append(
            {
                "model": name,
                "horizon": config.horizon,
                "lookback": config.lookback,
                "mse_scaled": model["scaled"]["mse"],
                "mae_scaled": model["scaled"]["mae"],
                "mse": model["original"]["mse"],
                "mae": model["original"]["mae"],
                "skill": metrics["skill"],
                "beats_naive": metrics["beats_naive"],
                "train_seconds": time.perf_counter() - started,
                "stopped": metrics["training"]["stopped"],
            }
        )
    return rows
