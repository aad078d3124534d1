"""A run directory: what `lstmcast train` writes, shared by the CLI, `compare`, `tune` and the
demo. A run reads its data once and forecasts its test split once; the metrics, the forecast
table and the plot all come from those forecasts.

runs/NAME/
  model.safetensors, config.json   the model (see lstmcast.workflows.modelfile)
  metrics.json                     test-split metrics of the model and repeat_last, and skill
  forecast_test.csv                every test forecast beside the actual value and repeat_last
  forecast.png                     the test split at one horizon step (plot_step), with bands
  forecast_future.png              the forecast after the data's last row, with bands
  run.json                         resolved config, library versions, training history
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lstmcast import models
from lstmcast.config import RunConfig
from lstmcast.data.mapped import MappedTable, Progress
from lstmcast.engine import distributed
from lstmcast.engine.training import Callback
from lstmcast.errors import LstmcastError, TrainingError
from lstmcast.evaluation.backtest import Backtest, forecast_frame
from lstmcast.evaluation.plots import plot_forecasts, plot_future
from lstmcast.files import (
    atomic_write,
    check_output_dir,
    staged_directory,
    staging_path,
    versions,
    write_json,
)
from lstmcast.workflows import defaults, mapped
from lstmcast.workflows.calibration import check_method
from lstmcast.workflows.fitting import Columns, DataLike, Dataset, read_dataset
from lstmcast.workflows.forecaster import Forecaster


def train_run(
    data: DataLike | Dataset | MappedTable,
    config: RunConfig,
    out_dir: str | Path | None,
    *,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    allow_untrained: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit, evaluate on the test split, and (when `out_dir` is given) write the run there.
    With `config.memmap` the data file is mapped first (`progress` sees its one-time build).

    With `out_dir` the run is one unit: built beside it under a lock, with a training
    checkpoint after every epoch, and swapped in whole at the end (`staged_directory`);
    `resume` goes on from the checkpoint a killed run left. TrainingError when the model
    learned nothing (no epoch improved on its initial weights), unless `allow_untrained`.

    In a DDP run (torchrun, see `lstmcast.engine.distributed`) every rank calls this; they
    train one model together, and rank 0 alone takes the lock, writes the run and its
    checkpoints and evaluates; the others return only {"training": ...}."""
    if out_dir is not None:
        check_output_dir(Path(out_dir))
    dataset: Dataset | MappedTable
    if config.memmap or isinstance(data, MappedTable):
        dataset = mapped.map_for(config, data, progress=progress)
    else:
        dataset = read_dataset(data, Columns.of(config))
    if not distributed.is_leader():
        return _follow(dataset, config, out_dir, callbacks, resume, allow_untrained)
    if out_dir is None:
        forecaster = Forecaster.from_config(config).fit(dataset, callbacks=callbacks)
        check_trained(forecaster, allow_untrained)
        return finish_run(forecaster, dataset, None)
    with contextlib.ExitStack() as stack:
        try:
            staging = stack.enter_context(staged_directory(Path(out_dir), resume=resume))
        except LstmcastError:
            distributed.leader_says(False)  # the other ranks stop too
            raise
        distributed.leader_says(True)
        return _train_into(staging, dataset, config, callbacks, resume, allow_untrained)


def _follow(
    dataset: Dataset | MappedTable,
    config: RunConfig,
    out_dir: str | Path | None,
    callbacks: Sequence[Callback],
    resume: bool,
    allow_untrained: bool,
) -> dict[str, Any]:
    """A DDP rank other than 0: train with the others, write nothing. Its checkpoint names
    rank 0's (rank 0 reads it and sends the state; this rank never touches the files)."""
    checkpoint = None
    if out_dir is not None:
        if not distributed.leader_says(False):
            raise TrainingError(f"rank 0 could not start the run in --out {out_dir}")
        checkpoint = staging_path(Path(out_dir)) / CHECKPOINT
    forecaster = Forecaster.from_config(config).fit(
        dataset, callbacks=callbacks, checkpoint=checkpoint, resume=resume
    )
    check_trained(forecaster, allow_untrained)
    return {"training": forecaster.training_.to_dict()}


def _train_into(
    directory: Path,
    dataset: Dataset | MappedTable,
    config: RunConfig,
    callbacks: Sequence[Callback],
    resume: bool,
    allow_untrained: bool,
) -> dict[str, Any]:
    """Fit with a checkpoint in `directory` and write the run there (which is not yet --out)."""
    checkpoint = directory / CHECKPOINT
    forecaster = Forecaster.from_config(config).fit(
        dataset, callbacks=callbacks, checkpoint=checkpoint, resume=resume
    )
    check_trained(forecaster, allow_untrained)
    metrics = finish_run(forecaster, dataset, directory)
    shutil.rmtree(checkpoint, ignore_errors=True)  # a finished run needs none
    return metrics


CHECKPOINT = "checkpoint"


def check_trained(forecaster: Forecaster, allow_untrained: bool) -> None:
    """TrainingError when a model with weights kept its initial ones (nothing learned)."""
    training = forecaster.training_
    trainable = any(p.requires_grad for p in forecaster.model_.parameters())
    if allow_untrained or not trainable or training.best_epoch > 0:
        return
    why = training.message or "no epoch improved the validation loss of the initial weights"
    raise TrainingError(
        f"training left the model untrained: {why}. Nothing was written; fix the cause or "
        f"pass --allow-untrained to keep it anyway"
    )


def finish_run(
    forecaster: Forecaster, dataset: Dataset | MappedTable, out_dir: str | Path | None
) -> dict[str, Any]:
    """Forecast the test split once, report it (metrics.json) and write the run directory. A
    mapped table's forecast after its end is made from its last rows (`mapped.tail`)."""
    forecasts, panel = forecaster.backtest(dataset, "test")
    metrics = forecaster.report(forecasts, "test")
    metrics["training"] = forecaster.training_.to_dict() | {"history": None}
    chosen = getattr(forecaster, "derived_", [])
    if chosen:  # the options fit chose from the data, with the reasons
        metrics["derived"] = [c.to_dict() for c in chosen]
    notes = list(dataset.notes) if isinstance(dataset, Dataset) else []
    if isinstance(dataset, MappedTable):
        stride = forecaster.config.stride
        notes.append(
            f"{dataset.source} is memory-mapped from {dataset.cache_dir}"
            + (f"; every split takes one window in {stride}" if stride > 1 else "")
        )
    if notes:
        metrics["notes"] = notes
    if out_dir is not None:
        write_run(forecaster, forecasts, panel.time, metrics, out_dir)
        if not forecaster.state_.inputs.future_covariates:  # their future values are unknown
            recent = (
                mapped.tail(dataset, forecaster.config)
                if isinstance(dataset, MappedTable)
                else dataset
            )
            write_future(forecaster, recent, Path(out_dir) / "forecast_future.png")
    return metrics


def write_future(
    forecaster: Forecaster,
    data: DataLike | Dataset,
    path: Path,
    intervals: Sequence[float] | None = None,
    future: DataLike | None = None,
) -> None:
    """The plot of the forecast after the last observed row, with the intervals (for a long
    table: of its first series). `future`: the known-future covariates' values, as `predict`."""
    dataset = forecaster.read(data, future_rows=bool(forecaster.state_.inputs.future_covariates))
    panel = dataset.panel
    first = panel.ids[0]
    ahead = forecaster.predict(dataset, intervals=intervals, ids=[first], future=future)
    series = panel.series(0)
    index = series.time if series.time is not None else pd.RangeIndex(len(series))
    targets = forecaster.state_.targets
    levels = panel.levels[panel.rows(0)] if panel.levels is not None else None
    shown = levels if levels is not None else series.values[:, : len(targets)]
    history = pd.DataFrame(shown, columns=targets, index=index)
    title = f"{forecaster.config.model}: forecast"
    if panel.id_col is not None:
        ahead = ahead.drop(columns=[panel.id_col]).set_index(panel.time_col or "step")
        title += f" of {first}"
    plot_future(history, ahead, path, title=title)


def write_run(
    forecaster: Forecaster,
    forecasts: Backtest,
    time_index: Any,
    metrics: dict[str, Any],
    out_dir: str | Path,
) -> None:
    """Write the run directory described at the top of this module."""
    config, state = forecaster.config, forecaster.state_
    directory = Path(out_dir)
    forecaster.save(directory)
    write_json(directory / "metrics.json", metrics)
    write_json(
        directory / "run.json",
        {
            "config": config.to_dict(),
            "versions": versions(),
            "device": str(forecaster.device_),
            "n_train_windows": state.n_train_windows,
            "split": state.split.to_dict(),
            "training": state.training.to_dict(),
            "derived": metrics.get("derived", []),
        },
    )
    id_col = state.inputs.id_col
    table = forecast_frame(forecasts, state.targets, time_index, id_col)
    atomic_write(directory / "forecast_test.csv", table.to_csv(index=False).encode())
    title = f"{config.model}: test split, step {config.plot_step}"
    shown = table
    if id_col is not None:  # one series per plot: the first
        first = table[id_col].iloc[0]
        shown, title = table[table[id_col] == first], f"{title}, series {first}"
    plot_forecasts(shown, directory / "forecast.png", title=title, step=config.plot_step)


def check_models(dataset: Dataset, base: RunConfig, names: Sequence[str]) -> list[RunConfig]:
    """The config of every model in `names`, each built once without training (with the
    options fit will choose from the data), so that a bad option of any of them is reported
    before the first one trains. The configs are returned as given: fit chooses, and records."""
    panel = dataset.panel
    configs = []
    for name in names:
        config = dataclasses.replace(base, model=name)
        resolved, _ = defaults.resolve(config, panel)
        check_method(resolved)
        probe = models.build_for_run(resolved, panel.values.shape[1], panel.n_targets, seeded=False)
        check_method(resolved, probe)
        configs.append(config)
    return configs


def compare_models(
    data: DataLike | Dataset,
    base: RunConfig,
    names: Sequence[str],
    out_dir: str | Path | None,
    *,
    callbacks: Sequence[Callback] = (),
    on_model: Any = None,
) -> list[dict[str, Any]]:
    """Train every model in `names` with the same data (read once), split and training options.
    `on_model(name)` is called before each one trains (for progress output). With `out_dir`,
    each run goes to `out_dir/<model>/` and the rows to `out_dir/comparison.json`, all of it
    swapped in at once when the last model is done."""
    mapped.refuse_in_memory_command(base, "compare", "models")
    dataset = read_dataset(data, Columns.of(base))
    configs = check_models(dataset, base, names)
    if out_dir is None:
        return [_compare_one(dataset, c, None, callbacks, on_model) for c in configs]
    # the runs are one unit: assembled aside and swapped in whole, with the table beside them
    with staged_directory(Path(out_dir)) as staging:
        rows = [_compare_one(dataset, c, staging, callbacks, on_model) for c in configs]
        write_json(staging / COMPARISON, {"results": rows, "versions": versions()})
    return rows


COMPARISON = "comparison.json"


def _compare_one(
    dataset: Dataset,
    config: RunConfig,
    directory: Path | None,
    callbacks: Sequence[Callback],
    on_model: Any,
) -> dict[str, Any]:
    if on_model is not None:
        on_model(config.model)
    started = time.perf_counter()
    # an untrained model is a row of the table (its "stopped" says why), not an abort
    if directory is None:
        metrics = train_run(dataset, config, None, callbacks=callbacks, allow_untrained=True)
    else:
        metrics = _train_into(directory / config.model, dataset, config, callbacks, False, True)
    model = metrics["model"]
    return {
        "model": config.model,
        "horizon": config.horizon,
        "lookback": metrics["lookback"],
        "mse_scaled": model["scaled"]["mse"],
        "mae_scaled": model["scaled"]["mae"],
        "mse": model["original"]["mse"],
        "mae": model["original"]["mae"],
        "skill": metrics["skill"],
        "beats_naive": metrics["beats_naive"],
        "best_baseline": metrics["best_baseline"],
        "skill_vs_best": metrics["skill_vs_best"],
        "beats_best_baseline": metrics["beats_best_baseline"],
        "train_seconds": time.perf_counter() - started,
        "stopped": metrics["training"]["stopped"],
        "message": metrics["training"]["message"],
        "intervals": _interval_summary(metrics),
    }


def _interval_summary(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Per level: coverage and interval score of the model and of repeat_last (scaled)."""
    if "intervals" not in metrics:
        return None
    report = metrics["intervals"]
    return {
        key: {
            "coverage": section["coverage"],
            "interval_score": section["interval_score"],
            "naive_interval_score": report["repeat_last"]["scaled"][key]["interval_score"],
        }
        for key, section in report["model"]["scaled"].items()
    }
