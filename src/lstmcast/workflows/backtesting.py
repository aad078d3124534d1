"""Rolling-origin backtests: how a model would have done had it been used through time.

The test span (the last `test_fraction` of the rows, or from `test_start`) holds the forecast
origins, every `origin_step` rows; they are cut into `folds` contiguous blocks. Fold k's model
is trained on the rows before its first origin less a `gap` (embargo) - all of them
(expanding) or the last `train_rows` (sliding) - with early stopping on the last
`val_fraction` of those rows, and scaled on its own training rows; `refit` says which folds
train (every fold, never after the first, or every K folds) and the others reuse the last
trained model with its scaler. A fold forecasts all its origins in one batched pass. Under a
target transform the model trains on the transform and every score is in levels (each path
rebuilt from its origin's last level; see `_in_levels`). A long table of many series is cut
into folds by time (`make_panel_folds`). With `memmap` a trained fold reads a mapped series
a chunk at a time (`workflows.mapped.training_data`).

out/
  backtest_plan.json          the plan, the config and the data digest (resume checks these)
  folds/fold_K.json           one finished fold's metrics (written last, atomically)
  folds/fold_K.safetensors    its forecasts, actual values and repeat_last (original units)
  models/fold_K/              each trained model (lstmcast model files)
  backtest.json               per-fold metrics, the aggregate, the Diebold-Mariano tests
  backtest_forecasts.csv      fold, [id,] origin, step, target, forecast, actual, repeat_last
  backtest.png                error through time per fold, and forecasts over actuals
  run.json                    resolved config, plan, library versions
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lstmcast.config import RunConfig, make_config
from lstmcast.data import Split, split_windows
from lstmcast.data.calendar import dates_only, time_text
from lstmcast.data.mapped import MappedTable
from lstmcast.data.panel import Panel, fit_row_scalers, window_series
from lstmcast.data.split import _boundary
from lstmcast.data.transform import LevelState, rebuild, resolve
from lstmcast.engine.checkpoint import Checkpoint
from lstmcast.engine.training import Callback, resolve_device
from lstmcast.errors import ConfigError, DataError, ModelFileError
from lstmcast.evaluation.backtest import Bands, map_bands
from lstmcast.evaluation.baselines import BaselineState, baseline_forecasts, fit_baselines
from lstmcast.evaluation.intervals import interval_metrics
from lstmcast.evaluation.market import market_report, up_fraction
from lstmcast.evaluation.metrics import (
    against_best,
    forecast_metrics,
    pooled_naive_mae,
    skill_score,
)
from lstmcast.evaluation.significance import diebold_mariano
from lstmcast.files import atomic_write, staged_directory, versions, write_json
from lstmcast.workflows import defaults, mapped, modelfile
from lstmcast.workflows.backtest_folds import Fold, Plan, make_folds, make_panel_folds
from lstmcast.workflows.calibration import bands as make_bands
from lstmcast.workflows.calibration import calibrate, model_outputs, need
from lstmcast.workflows.fitting import (
    Columns,
    DataLike,
    Dataset,
    FittedState,
    Inputs,
    TrainingData,
    fingerprint,
    fit_model,
    make_inputs,
    read_dataset,
)

PLAN_FILE = "backtest_plan.json"


# ------------------------------------------------------------------------------ one fold
@dataclass
class Trained:
    """A fold's model with what it needs to forecast: its scaler and inputs."""

    fold: int
    state: FittedState
    seconds: float


def train_fold(
    panel: Panel,
    fold: Fold,
    config: RunConfig,
    device: torch.device,
    sha256: str,
    callbacks: Sequence[Callback] = (),
    checkpoint: Path | None = None,
    table: MappedTable | None = None,
) -> Trained:
    """Train on the fold's rows only: each series' own scaler on its training window, its
    windows and early stopping on its last rows. With `checkpoint`, training saves there every
    epoch and goes on from what is there (a backtest killed inside a fold loses at most one
    epoch of it). `table`: the panel is that mapped table's one series, read a chunk at a time
    (`workflows.mapped.training_data`)."""
    started = time.perf_counter()
    split = fold.split()
    pieces = fold.train_rows(panel.bounds)  # each series' training rows
    inputs = make_inputs(panel, config, split)
    layout = inputs.layout(panel.n_targets, len(panel.covariates))
    L, H, V = config.lookback_rows, config.horizon, panel.n_targets
    # windows inside each [start, end): validation inputs reach back into its train rows only
    train_starts = _window_starts(panel, fold, "train", L, H, config.stride)
    val_starts = _window_starts(panel, fold, "val", L, H, 1 if table is None else config.stride)
    starts = (train_starts, val_starts)
    data = (
        _fold_data(panel, pieces, inputs, config, starts)
        if table is None
        else mapped.training_data(table, (pieces[0][1].start, pieces[0][1].stop), config, starts)
    )
    fitted = fit_model(
        data.series,
        layout,
        data.starts,
        config,
        device,
        callbacks,
        covariates=inputs.spec(H, layout),
        train_rows=data.train_rows,
        checkpoint=None
        if checkpoint is None
        else Checkpoint(
            checkpoint,
            fingerprint(
                config,
                sha256,
                ",".join("-" if w is None else f"{w[0]}:{w[1]}" for w in fold.windows),
            ),
            resume=True,
        ),
    )
    calibration = calibrate(
        fitted.model, fitted.series, data.series, fitted.val_starts, V, config, layout
    )
    state = FittedState(
        model=fitted.model,
        scaler=data.scaler,
        targets=list(panel.targets),
        covariates=list(panel.covariates),
        time_col=panel.time_col,
        freq=panel.freq,
        split=split,
        naive_mae_scaled=data.naive_mae_scaled,
        naive_mae_original=data.naive_mae_original,
        up_fraction=data.up_fraction,
        training=fitted.training,
        n_train_windows=len(train_starts),
        data_sha256=sha256,
        calibration=calibration,
        inputs=inputs,
        levels=_fit_levels(panel, pieces, config),
        # the baselines `train` reports, on the rows this model trained on
        baselines=fit_baselines(panel.target_levels, pieces, panel.n_series, panel.freq, L, None)
        if table is None
        else mapped.fit_baselines(
            table, (pieces[0][1].start, pieces[0][1].stop), panel.freq, L, None
        ),
    )
    return Trained(fold.index, state, time.perf_counter() - started)


def _fold_data(
    panel: Panel,
    pieces: list[tuple[int, slice]],
    inputs: Inputs,
    config: RunConfig,
    starts: tuple[np.ndarray, np.ndarray],
) -> TrainingData:
    """A fold of a table in memory: each series scaled on its training rows `pieces`."""
    V = panel.n_targets
    scaler = fit_row_scalers(panel.values, pieces, panel.n_series, config.scaler)
    scaled = inputs.design(panel.values, panel.series_of_rows(), panel.time, scaler)
    levels = panel.target_levels
    return TrainingData(
        scaler,
        scaled,
        starts,
        np.concatenate([np.arange(rows.start, rows.stop) for _, rows in pieces]),
        pooled_naive_mae([scaled[rows, :V] for _, rows in pieces]),
        pooled_naive_mae([panel.values[rows, :V] for _, rows in pieces]),
        up_fraction([levels[rows] for _, rows in pieces]),
    )


def _fit_levels(
    panel: Panel, pieces: list[tuple[int, slice]], config: RunConfig
) -> LevelState | None:
    """Under a target transform, the levels' side of the fold: each series' scaler of its
    training levels and their one-step naive MAE (scaled, original), the footing of the
    level metrics."""
    if panel.levels is None:
        return None
    scaler = fit_row_scalers(panel.levels, pieces, panel.n_series, config.scaler)
    scaled = [
        scaler.transform_rows(panel.levels[rows], np.full(rows.stop - rows.start, i))
        for i, rows in pieces
    ]
    return LevelState(
        resolve(config.transform, panel.targets),
        scaler,
        pooled_naive_mae(scaled),
        pooled_naive_mae([panel.levels[rows] for _, rows in pieces]),
    )


def _window_starts(
    panel: Panel, fold: Fold, part: str, lookback: int, horizon: int, stride: int
) -> np.ndarray:
    """The stacked window starts of `part` ("train" or "val") of every series in the fold,
    each series' windows inside its own training window."""
    pieces = []
    for i, window in enumerate(fold.windows):
        if window is None:
            continue
        start, end, n_val = window
        n = end - start
        local = Split((0, n - n_val), (n - n_val, n), (n, n))
        offset = int(panel.bounds[i]) + start
        pieces.append(offset + split_windows(local, part, lookback, horizon, stride))
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)


def forecast_folds(
    trained: Trained,
    panel: Panel,
    folds: Sequence[Fold],
    config: RunConfig,
    device: torch.device,
    period: int | None,
) -> list[dict[str, Any]]:
    """Every origin of `folds` (consecutive folds sharing `trained`'s model) in one batched
    pass; per fold, metrics beside repeat_last (and seasonal_naive with a period) and interval
    coverage when the model has intervals."""
    state = trained.state
    L, H, V = config.lookback_rows, config.horizon, panel.n_targets
    started = time.perf_counter()
    # the rows the group reads, scaled with this model's scaler: from the first window's first
    # row to the last forecast's last target (the design is row by row, so the slice is the
    # same rows as the whole series' design would give); indices below count from `first_row`
    group_origins = np.concatenate([fold.origins for fold in folds])
    first_row, end_row = int(group_origins.min()) - L + 1, int(group_origins.max()) + H + 1
    rows = slice(first_row, end_row)
    scaled = state.inputs.design(
        panel.values[rows],
        window_series(panel.bounds, np.arange(first_row, end_row)),
        panel.time[rows] if panel.time is not None else None,
        state.scaler,
    )
    tensor = torch.from_numpy(scaled).to(device)
    series = window_series(panel.bounds, group_origins)  # each window's series
    origins = group_origins - first_row
    starts = origins - L + 1
    calibration = state.calibration
    levels = calibration.levels if calibration is not None else ()
    outputs = model_outputs(
        state.model,
        tensor,
        starts,
        L,
        calibration.method if calibration is not None else None,
        config.head_quantiles(),
        config.mc_samples,
        state.layout,
        H,
    )
    seconds = time.perf_counter() - started
    steps = origins[:, None] + 1 + np.arange(H)
    actual_s = scaled[steps, :V].astype(np.float64)
    last_s = scaled[origins, :V].astype(np.float64)
    forecasts = {
        "model": outputs.point.astype(np.float64),
        "repeat_last": np.repeat(last_s[:, None, :], H, axis=1),
    }
    bands = None
    if levels:  # over the whole group, so adaptive intervals run on without a restart
        bands = make_bands(need(calibration, "levels"), levels, outputs, last_s, actual=actual_s)
    space = Space(
        actual_s,
        forecasts,
        last_s,
        bands,
        *state.scaler.params(series, V, np.float64),
        state.naive_mae_scaled,
        state.naive_mae_original,
    )
    trained_space = None
    if state.levels is not None and panel.levels is not None:
        trained_space = space
        space = _in_levels(space, state.levels, panel.levels[rows], origins, series)
    # mean and seasonal_naive in original units (levels, not rebuilt returns), then scaled
    level_rows = panel.target_levels[rows]
    for name, raw in _baselines(state, period, level_rows, series, starts, L, H).items():
        space.forecasts[name] = space.scaled(raw)
    actual_s, forecasts, last_s, bands = space.actual, space.forecasts, space.last, space.bands

    results, first = [], 0
    dates = panel.time is not None and dates_only(panel.time)
    for fold in folds:
        part = slice(first, first + len(fold.origins))
        first = part.stop
        metrics = {name: space.metrics(f, part, state.targets) for name, f in forecasts.items()}
        summary: dict[str, Any] = {
            "fold": fold.index + 1,
            "first_origin": _label(panel, int(fold.origins[0]), dates),
            "last_origin": _label(panel, int(fold.origins[-1]), dates),
            "n_origins": len(fold.origins),
            **_train_rows(fold, panel),
            "trained": trained.fold == fold.index,
            "model_from_fold": trained.fold + 1,
            "train_seconds": trained.seconds if trained.fold == fold.index else 0.0,
            # the group's one pass, shared out by origins
            "forecast_seconds": seconds * len(fold.origins) / len(origins),
            "forecast_pass_folds": [f.index + 1 for f in folds],
            "stopped": state.training.stopped,
            "metrics": metrics,
            "skill": skill_score(
                metrics["model"]["scaled"]["mse"], metrics["repeat_last"]["scaled"]["mse"]
            ),
        }
        if trained_space is not None:  # the model in the space it was trained in
            summary["metrics_trained"] = {
                name: trained_space.metrics(trained_space.forecasts[name], part, state.targets)
                for name in ("model", "repeat_last")
            }
        if bands is not None:
            coverage = interval_metrics(
                actual_s[part], bands.lower[part], bands.upper[part], list(levels), state.targets
            )["overall"]
            summary["intervals"] = {
                k: {"coverage": v["coverage"], "width": v["width"]} for k, v in coverage.items()
            }
        point, naive = forecasts["model"][part], forecasts["repeat_last"][part]
        arrays = {
            "origins": fold.origins,
            "forecast": space.original(point, part),
            "actual": space.original(actual_s[part], part),
            "repeat_last": space.original(naive, part),
            "error_scaled": point - actual_s[part],
            "naive_error_scaled": naive - actual_s[part],
        }
        if panel.n_series > 1:
            arrays["series"] = series[part]
        if config.wants_market:  # in levels, like every score here
            summary["market"] = _market(arrays, series[part], fold, state, config, panel)
        results.append({"summary": summary, "arrays": arrays})
    return results


@dataclass
class Space:
    """A fold group's forecasts on one footing: actual (N, H, V), each forecast (N, H, V) and
    the last observed row (N, V), each window scaled by its series' center/scale (N, V);
    `bands` on the same scale; the one-step naive MAE (scaled, original) MASE divides by."""

    actual: np.ndarray
    forecasts: dict[str, np.ndarray]
    last: np.ndarray
    bands: Bands | None
    center: np.ndarray
    scale: np.ndarray
    naive_mae_scaled: np.ndarray
    naive_mae_original: np.ndarray

    def _params(self, a: np.ndarray, part: slice) -> tuple[np.ndarray, np.ndarray]:
        """Windows `part`'s center and scale, shaped to broadcast over `a` ((n, V) or
        (n, H, V))."""
        shape = (-1,) + (1,) * (a.ndim - 2) + (self.center.shape[-1],)
        return self.center[part].reshape(shape), self.scale[part].reshape(shape)

    def original(self, a: np.ndarray, part: slice = slice(None)) -> np.ndarray:
        center, scale = self._params(a, part)
        return a * scale + center

    def scaled(self, a: np.ndarray, part: slice = slice(None)) -> np.ndarray:
        center, scale = self._params(a, part)
        return (a - center) / scale

    def metrics(self, pred: np.ndarray, part: slice, targets: list[str]) -> dict[str, Any]:
        """`pred`'s metrics over windows `part`, scaled and in original units."""
        actual, last = self.actual[part], self.last[part]
        on_scale = forecast_metrics(actual, pred[part], last, self.naive_mae_scaled, targets)
        in_units = forecast_metrics(
            self.original(actual, part),
            self.original(pred[part], part),
            self.original(last, part),
            self.naive_mae_original,
            targets,
        )
        return {
            "scaled": on_scale["overall"],
            "original": in_units["overall"],
            "per_variable": in_units["per_variable"],
        }


def _baselines(
    state: FittedState,
    period: int | None,
    level_rows: np.ndarray,
    series: np.ndarray,
    starts: np.ndarray,
    lookback: int,
    horizon: int,
) -> dict[str, np.ndarray]:
    """`mean` and `seasonal_naive` (the season given with --period, else the one the fold's
    training rows show) in original units; a fold model saved before the baselines were (a
    resumed backtest) has seasonal_naive with --period alone."""
    fitted, dropped = state.baselines, set()
    if fitted is None:  # no mean to draw; seasonal_naive needs none
        fitted, dropped = BaselineState(np.zeros((int(series.max()) + 1, 1)), None), {"mean"}
    season = period if period is not None else fitted.season
    out = baseline_forecasts(
        dataclasses.replace(fitted, season=season), level_rows, series, starts, lookback, horizon
    )
    return {name: a for name, a in out.items() if name not in dropped}


def _in_levels(
    trained: Space,
    levels: LevelState,
    level_rows: np.ndarray,
    origins: np.ndarray,
    series: np.ndarray,
) -> Space:
    """`trained` (a target transform's space) in levels: each forecast path rebuilt from its
    origin's last level (`level_rows`: the levels of the rows the group reads; `origins`
    index them), repeat_last the last level, on the scale of the levels' own scaler of each
    window's series. Bands map through the per-step rebuild, monotone for the transforms that
    allow intervals."""
    level_rows = level_rows.astype(np.float64)
    H = trained.actual.shape[1]
    last = level_rows[origins]
    space = Space(
        np.empty(0),
        {},
        np.empty(0),
        None,
        *levels.scaler.params(series, level_rows.shape[1], np.float64),
        levels.naive_mae_scaled,
        levels.naive_mae_original,
    )

    def rebuilt(y_scaled: np.ndarray) -> np.ndarray:
        return space.scaled(rebuild(trained.original(y_scaled), last, levels.kinds))

    space.actual = space.scaled(level_rows[origins[:, None] + 1 + np.arange(H)])
    space.last = space.scaled(last)
    space.forecasts = {
        "model": rebuilt(trained.forecasts["model"]),
        "repeat_last": np.repeat(space.last[:, None, :], H, axis=1),
    }
    if trained.bands is not None:
        space.bands = map_bands(trained.bands, rebuilt)
    return space


def _market(
    arrays: dict[str, np.ndarray],
    series: np.ndarray,
    fold: Fold,
    state: FittedState,
    config: RunConfig,
    panel: Panel,
) -> dict[str, Any]:
    """The fold's market measures (hit rates against always-up and the training majority,
    Theil's U2, the illustrative long/short rule) on its forecasts in levels."""
    report = market_report(
        arrays["actual"],
        arrays["forecast"],
        arrays["repeat_last"][:, 0],
        series,
        fold.origins,
        state.targets,
        up_fraction=state.up_fraction,
        cost_bps=config.cost_bps,
        freq=state.freq,
    )
    for block in report["trading"]["per_variable"].values():  # series by id, not index
        if "per_series" in block:
            block["per_series"] = {panel.ids[int(k)]: v for k, v in block["per_series"].items()}
    return report


def _train_rows(fold: Fold, panel: Panel) -> dict[str, Any]:
    """The report's record of the fold's training rows: [start, end) and the validation rows of
    one series; of many, the series forecast and the training rows of them all."""
    if len(fold.windows) == 1:
        return {"train_rows": [fold.train_start, fold.train_end], "validation_rows": fold.n_val}
    kept = [w for w in fold.windows if w is not None]
    return {
        "n_series": len(np.unique(window_series(panel.bounds, fold.origins))),
        "train_rows": sum(w[1] - w[0] for w in kept),
        "validation_rows": sum(w[2] for w in kept),
    }


def _label(panel: Panel, row: int, dates: bool) -> Any:
    """A fold's origin in the report: its timestamp (a date on daily data), else its row."""
    return time_text(panel.time[row], dates) if panel.time is not None else row


# ------------------------------------------------------------------------------ the run
def backtest(
    data: DataLike | Dataset,
    config: RunConfig,
    plan: Plan,
    out_dir: str | Path | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume, or reuse) the backtest of `config` under `plan`; returns what
    backtest.json holds. `on_fold(summary)` is called after each fold (progress output)."""
    if config.val_start is not None:
        raise ConfigError(
            "backtest validates each fold on the last --val-fraction of its training rows; "
            "--val-start (one date for one split) does not apply: drop it"
        )
    table = None
    if config.memmap:  # a series larger than RAM: mapped once, each fold's passes in chunks
        table = mapped.map_for(config, data)  # type: ignore[arg-type]
        panel = Panel.single(table)
        dataset = Dataset(panel, table.sha256, table.source, Columns.of(config))
    else:
        dataset = read_dataset(data, Columns.of(config))
        panel = dataset.panel
    config, _ = defaults.resolve(config, panel)  # the options left to the data, chosen once
    n = len(panel)
    if panel.n_series > 1:
        folds = make_panel_folds(panel, config, plan)
    else:
        folds = make_folds(n, _test_start(panel, config), config, plan)
    if config.period is not None and config.period > config.lookback_rows:
        raise ConfigError(
            f"--period {config.period} (seasonal_naive) must be <= the lookback {config.lookback}"
        )
    device = resolve_device(config.device)
    period = config.period  # seasonal_naive is reported beside the model when it is given
    if period is not None and config.model != "seasonal_naive":
        config = dataclasses.replace(config, period=None)  # not an option of other models
    directory = Path(out_dir) if out_dir is not None else None
    manifest = {
        "plan": dataclasses.asdict(plan),
        "config": config.to_dict(),
        "data_sha256": dataset.sha256,
        "n_rows": n,
    }
    with contextlib.ExitStack() as stack:
        if directory is not None:  # assembled aside (resumable there), swapped in whole
            out, directory = (
                directory,
                stack.enter_context(staged_directory(directory, resume=None)),
            )
            _check_or_write_plan(directory, out, manifest)
        return _run(
            dataset,
            folds,
            config,
            plan,
            manifest,
            directory,
            device,
            period,
            callbacks,
            on_fold,
            table,
        )


def _run(
    dataset: Dataset,
    folds: list[Fold],
    config: RunConfig,
    plan: Plan,
    manifest: dict[str, Any],
    directory: Path | None,
    device: torch.device,
    period: int | None,
    callbacks: Sequence[Callback],
    on_fold: Callable[[dict[str, Any]], None] | None,
    table: MappedTable | None = None,
) -> dict[str, Any]:
    """Every fold in order (those `directory` holds are read, not rerun), then the report."""
    panel = dataset.panel
    summaries: list[dict[str, Any]] = []
    arrays: list[dict[str, np.ndarray]] = []
    trained: Trained | None = None
    k = 0
    while k < len(folds):
        fold = folds[k]
        done = _read_fold(directory, fold.index) if directory is not None else None
        if done is not None:
            summaries.append(done[0])
            arrays.append(done[1])
            if on_fold is not None:
                on_fold({**done[0], "resumed": True})
            k += 1
            continue
        if plan.trains(fold.index):
            progress = None if directory is None else directory / "checkpoint"
            trained = train_fold(
                panel,
                fold,
                config,
                device,
                dataset.sha256,
                callbacks,
                checkpoint=progress,
                table=table,
            )
            if directory is not None:
                path = directory / "models" / f"fold_{fold.index + 1}"
                modelfile.save(config, trained.state, path)
                shutil.rmtree(directory / "checkpoint", ignore_errors=True)
        elif trained is None:  # resuming after the folds that trained this one's model
            source = max(j for j in range(fold.index + 1) if plan.trains(j))
            trained = _load_trained(directory, source, device)
        group = [fold]  # the next folds that reuse this model forecast in the same pass
        while k + len(group) < len(folds) and not plan.trains(folds[k + len(group)].index):
            group.append(folds[k + len(group)])
        for done_fold, result in zip(
            group, forecast_folds(trained, panel, group, config, device, period), strict=True
        ):
            if directory is not None:
                _write_fold(directory, done_fold.index, result)
            summaries.append(result["summary"])
            arrays.append(result["arrays"])
            if on_fold is not None:
                on_fold(result["summary"])
        k += len(group)
    times = None
    if panel.n_series > 1 and panel.time is not None:  # one loss differential per time
        times = np.concatenate([panel.time.asi8[a["origins"].astype(np.int64)] for a in arrays])
    report = _report(summaries, arrays, config, plan, manifest, times)
    if panel.levels is not None:  # the metrics are in levels, rebuilt from this transform
        report["transform"] = dict(
            zip(panel.targets, resolve(config.transform, panel.targets), strict=True)
        )
    if directory is not None:
        _write_outputs(directory, report, summaries, arrays, panel, config, manifest)
    return report


def _test_start(panel: Panel, config: RunConfig) -> int:
    n = len(panel)
    if config.test_start is not None:
        if panel.time is None:
            raise DataError("--test-start needs a time column; the data has none")
        return int(panel.time.searchsorted(_boundary("test_start", config.test_start, panel.time)))
    return n - math.floor(n * config.test_fraction + 1e-9)


def _report(
    summaries: list[dict[str, Any]],
    arrays: list[dict[str, np.ndarray]],
    config: RunConfig,
    plan: Plan,
    manifest: dict[str, Any],
    times: np.ndarray | None = None,
) -> dict[str, Any]:
    """backtest.json's content. `times` (one per origin, for many series): the DM test takes
    the mean loss differential over the series at each origin time, a series in time order
    (pooling the series' origins would treat them as independent draws)."""
    # a fold resumed from an older run may lack a baseline: report what every fold has
    names = [n for n in summaries[0]["metrics"] if all(n in s["metrics"] for s in summaries)]
    aggregate: dict[str, Any] = {}
    for name in names:
        for space in ("scaled", "original"):
            for metric in ("mse", "mae"):
                values = [s["metrics"][name][space][metric] for s in summaries]
                aggregate.setdefault(name, {}).setdefault(space, {})[metric] = {
                    "mean": float(np.mean(values)),
                    "std": float(np.std(values)),
                }
    skills = [s["skill"] for s in summaries if s["skill"] is not None]
    aggregate["skill"] = {
        "mean": float(np.mean(skills)) if skills else None,
        "std": float(np.std(skills)) if skills else None,
    }
    errors = np.concatenate([a["error_scaled"] for a in arrays])
    naive = np.concatenate([a["naive_error_scaled"] for a in arrays])
    lags = math.ceil(config.horizon / plan.origin_step)
    tests = {
        loss: diebold_mariano(errors, naive, lags, loss, times=times)
        for loss in ("squared", "absolute")
    }
    for loss, test in tests.items():
        test["verdict_line"] = _verdict(config.model, test, loss)
    baselines = [n for n in names if n != "model"]
    # the mean over folds of each fold's scaled MSE, against the best baseline's
    best, skill_vs_best = against_best(
        {n: aggregate[n]["scaled"]["mse"]["mean"] for n in names}, baselines
    )
    return {
        "model": config.model,
        "lookback": config.lookback,
        "horizon": config.horizon,
        "plan": manifest["plan"],
        "n_folds": len(summaries),
        "n_origins": int(sum(s["n_origins"] for s in summaries)),
        "folds": summaries,
        "aggregate": aggregate,
        "diebold_mariano": tests,
        "baselines": baselines,
        "best_baseline": best,
        "skill_vs_best": skill_vs_best,
        "train_seconds": float(sum(s["train_seconds"] for s in summaries)),
        "forecast_seconds": float(sum(s["forecast_seconds"] for s in summaries)),
    }


def _verdict(model: str, test: dict[str, Any], loss: str) -> str:
    what = f"{loss} errors"
    if test["statistic"] is None:
        return f"{model} vs repeat_last on {what}: {test['verdict']}"
    detail = f"(DM {test['statistic']:.2f}, p {test['p_value']:.3g}, n {test['n']})"
    if test["verdict"] == "better":
        return f"{model} is better than repeat_last at the 5% level on {what} {detail}"
    if test["verdict"] == "worse":
        return f"{model} is worse than repeat_last at the 5% level on {what} {detail}"
    return f"{model} and repeat_last are not distinguishable at the 5% level on {what} {detail}"


# ------------------------------------------------------------------------- files, resume
def _check_or_write_plan(directory: Path, out: Path, manifest: dict[str, Any]) -> None:
    """Go on with the partial run in `directory`, or with the finished one at `out` (its
    folds are reused: hard-linked, not copied), or start one; ConfigError when either holds
    a backtest of other data or options."""
    for where in (directory, out):
        path = where / PLAN_FILE
        if not path.is_file():
            continue
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"'{path}' is not valid JSON: {exc}") from exc
        if old != json.loads(json.dumps(manifest)):
            raise ConfigError(
                f"--out {out} holds a backtest of other data or options; resume it with "
                f"the same ones, or use another --out"
            )
        if where == out and not (directory / PLAN_FILE).is_file():
            for name in ("folds", "models"):
                if (out / name).is_dir():
                    shutil.copytree(out / name, directory / name, copy_function=os.link)
            break
        return
    write_json(directory / PLAN_FILE, manifest)


def _write_fold(directory: Path, index: int, result: dict[str, Any]) -> None:
    from safetensors.numpy import save as save_arrays

    folds = directory / "folds"
    arrays = {k: np.ascontiguousarray(v) for k, v in result["arrays"].items()}
    atomic_write(folds / f"fold_{index + 1}.safetensors", save_arrays(arrays))
    write_json(folds / f"fold_{index + 1}.json", result["summary"])  # last: marks it finished


def _read_fold(directory: Path, index: int) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    summary, tensors = (
        directory / "folds" / f"fold_{index + 1}.{ext}" for ext in ("json", "safetensors")
    )
    if not summary.is_file() or not tensors.is_file():
        return None
    try:
        return json.loads(summary.read_text(encoding="utf-8")), load_file(str(tensors))
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError) as exc:
        raise ModelFileError(f"'{summary.parent}' holds a damaged fold {index + 1}: {exc}") from exc


def _load_trained(directory: Path | None, index: int, device: torch.device) -> Trained:
    if directory is None:
        raise ConfigError("internal: a reused model needs its fold's model files")
    _, state = modelfile.load(directory / "models" / f"fold_{index + 1}")
    state.model.to(device).eval()
    return Trained(index, state, 0.0)


def _write_outputs(
    directory: Path,
    report: dict[str, Any],
    summaries: list[dict[str, Any]],
    arrays: list[dict[str, np.ndarray]],
    panel: Panel,
    config: RunConfig,
    manifest: dict[str, Any],
) -> None:
    from lstmcast.evaluation.plots import plot_backtest

    write_json(directory / "backtest.json", report)
    write_json(directory / "run.json", {**manifest, "versions": versions()})
    table = forecast_table(arrays, panel, list(panel.targets))
    atomic_write(directory / "backtest_forecasts.csv", table.to_csv(index=False).encode())
    plot_backtest(
        table,
        directory / "backtest.png",
        title=f"{config.model}: backtest",
        id_col=panel.id_col if panel.n_series > 1 else None,
        step=config.plot_step,
    )


def forecast_table(
    arrays: list[dict[str, np.ndarray]], panel: Panel, targets: list[str]
) -> pd.DataFrame:
    """One row per (fold, origin, step, target), original units."""
    frames = []
    for k, a in enumerate(arrays):
        origins = a["origins"].astype(np.int64)
        n, horizon, n_vars = a["forecast"].shape
        labels = panel.time[origins] if panel.time is not None else origins
        ids = {}
        if panel.id_col is not None and "series" in a:
            names = np.asarray(panel.ids, dtype=object)[a["series"].astype(np.int64)]
            ids = {panel.id_col: np.repeat(names, horizon * n_vars)}
        frames.append(
            pd.DataFrame(
                {
                    "fold": k + 1,
                    **ids,
                    "origin": np.repeat(np.asarray(labels), horizon * n_vars),
                    "step": np.tile(np.repeat(np.arange(1, horizon + 1), n_vars), n),
                    "target": np.tile(np.asarray(targets), n * horizon),
                    "forecast": a["forecast"].ravel(),
                    "actual": a["actual"].ravel(),
                    "repeat_last": a["repeat_last"].ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def run_backtest(
    data: DataLike,
    model: str = "lstm",
    *,
    out: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    **options: Any,
) -> dict[str, Any]:
    """`lstmcast.backtest(data, model, folds=5, origin_step=1, refit="every",
    window="expanding", train_rows=None, gap=0, out=None, **run_options)`: the rolling-origin
    backtest of `model` (see `backtest`); the other keywords are `RunConfig` fields."""
    names = {f.name for f in dataclasses.fields(Plan)}
    plan = Plan(**{k: v for k, v in options.items() if k in names})
    config = make_config({"model": model, **{k: v for k, v in options.items() if k not in names}})
    return backtest(data, config, plan, out, callbacks=callbacks)
