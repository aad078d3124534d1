"""`fit` and the test windows of a mapped table (`lstmcast.data.mapped`): a series larger
than RAM.

The same recipe as `Forecaster.fit` on a wide table, with every pass over the rows done a
chunk at a time: the scaler, the naive MAE and the baselines' fit read the training rows in
chunks, and the scaled series is a second mapped file. `--stride` also thins the validation
and test windows, so that a 100M-row series is validated and evaluated on as many windows as
it is trained on (the report says how many). When the train and validation windows cover at
most half the rows, their rows alone are read into memory, in order, and the loop trains on
them (`compact_windows`: the same windows in the same order, so the same model bit for bit);
otherwise it gathers its batches from the mapping itself (the tensor shares it). A page
gathered through a mapping stays counted in the process's memory until the kernel reclaims
it, and the kernel maps the cached pages around each one it faults in: strided windows spread
over a 2.8 GB file would bring most of it in.

Options that need every row at once are refused in one line: long tables, known-future and
static covariates, calendars and macro joins, target transforms, duplicate policies,
adaptive intervals, `--fill interpolate` and `--scaler robust`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lstmcast.config import RunConfig
from lstmcast.data.mapped import (
    MappedTable,
    Progress,
    chunked_mean,
    chunked_naive_mae,
    chunked_scaler,
    chunked_up_fraction,
    compact_windows,
    map_table,
    read_rows,
    scaled_copy,
)
from lstmcast.data.panel import Panel, PanelScaler, panel_starts
from lstmcast.data.scale import Scaler
from lstmcast.engine.checkpoint import Checkpoint
from lstmcast.engine.training import Callback, resolve_device
from lstmcast.errors import ConfigError
from lstmcast.evaluation.baselines import BaselineState, detect_season
from lstmcast.workflows import defaults
from lstmcast.workflows.calibration import calibrate
from lstmcast.workflows.fitting import (
    DataLike,
    Dataset,
    FittedState,
    TrainingData,
    fingerprint,
    fit_model,
    make_inputs,
    split_panel,
)

SEASON_ROWS = 1_000_000  # the last training rows whose differences decide seasonal_naive's season
TAIL_ROWS = 1_000  # rows handed to predict for the plot of the forecast (at least 20 lookbacks)


def check_config(config: RunConfig) -> None:
    """ConfigError for the first option a mapped table cannot honour (see the module doc)."""
    refused = [
        ("id_col", config.id_col is not None, "long tables"),
        ("future_covariates", bool(config.future_covariates), "known-future covariates"),
        ("static", bool(config.static), "static covariates"),
        ("calendar", config.calendar != "none", "calendar features"),
        ("holidays", config.holidays is not None, "holiday flags"),
        ("macro", config.macro is not None, "macro joins"),
        ("transform", config.transform != "none", "target transforms"),
        ("duplicates", config.duplicates != "error", "duplicate policies"),
        ("adaptive_gamma", config.adaptive_gamma > 0, "adaptive intervals"),
    ]
    for name, used, what in refused:
        if used:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(
                f"--memmap does not take {flag} ({what} need every row in memory); drop "
                f"{flag}, or train without --memmap"
            )
    if config.scaler == "robust":
        raise ConfigError(
            "--scaler robust needs each column's median and quartiles over every training row; "
            "with --memmap use --scaler standard, minmax or none"
        )


def refuse_in_memory_command(config: RunConfig, command: str, each: str) -> None:
    """Commands that read the data into memory once for `each` of their runs (compare's models,
    tune's trials) take no --memmap yet: one line that says so, before anything is written."""
    if config.memmap:
        raise ConfigError(
            f"{command} reads the data into memory once for all its {each}; --memmap is not "
            f"supported by {command} yet (train and backtest take it): drop --memmap"
        )


def map_for(
    config: RunConfig,
    data: DataLike | Dataset | MappedTable,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> MappedTable:
    """The mapped table of the file `data` under `config`'s columns (built once)."""
    check_config(config)
    if isinstance(data, MappedTable):
        return data
    if isinstance(data, pd.DataFrame | Dataset):
        raise ConfigError(
            f"--memmap maps a CSV or Parquet file; {type(data).__name__} is in memory already"
        )
    return map_table(
        data,
        targets=config.targets,
        covariates=tuple(config.covariates),
        time_col=config.time_col,
        fill=config.fill,
        cache_dir=cache_dir,
        progress=progress,
    )


@dataclass
class MappedFit:
    """What `fit` learns: the resolved config, the device, the options chosen from the data,
    an ensemble's members on validation, and the `FittedState`."""

    config: RunConfig
    device: torch.device
    chosen: list[defaults.Chosen]
    members: dict[str, Any] | None
    state: FittedState


def fit(
    config: RunConfig,
    table: MappedTable,
    callbacks: Sequence[Callback],
    checkpoint: str | Path | None,
    resume: bool | None,
) -> MappedFit:
    """`Forecaster.fit` on a mapped table (see the module doc)."""
    check_config(config)
    panel = Panel.single(table)
    config, chosen = defaults.resolve(config, panel)
    device = resolve_device(config.device)
    split = split_panel(panel, config)
    train = split.splits[0].train  # type: ignore[union-attr]  # one series: never skipped
    L, H, V = config.lookback_rows, config.horizon, panel.n_targets
    inputs = make_inputs(panel, config, split)
    layout = inputs.layout(V, len(panel.covariates))
    data = training_data(
        table,
        train,
        config,
        (
            panel_starts(panel.bounds, split, "train", L, H, config.stride),
            panel_starts(panel.bounds, split, "val", L, H, config.stride),
        ),
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
        else Checkpoint(Path(checkpoint), fingerprint(config, table.sha256), resume),
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
        training=fitted.training,
        n_train_windows=len(fitted.train_starts),
        data_sha256=table.sha256,
        calibration=calibrate(
            fitted.model, fitted.series, data.series, fitted.val_starts, V, config, layout
        ),
        inputs=inputs,
        up_fraction=data.up_fraction,
        baselines=fit_baselines(table, train, panel.freq, L, config.period),
    )
    return MappedFit(config, device, chosen, fitted.members, state)


def fit_baselines(
    table: MappedTable, train: tuple[int, int], freq: str | None, lookback: int, period: int | None
) -> BaselineState:
    """The baselines' fit a chunk at a time: the mean over the training rows `train`, the
    season from their last SEASON_ROWS rows' differences."""
    V = len(table.targets)
    season_rows = (max(train[0], train[1] - SEASON_ROWS), train[1])
    rows = [read_rows(table.values, *season_rows)[:, :V]]
    return BaselineState(
        chunked_mean(table.values, train, V)[None], detect_season(freq, rows, lookback, period)
    )


def training_data(
    table: MappedTable,
    rows: tuple[int, int],
    config: RunConfig,
    starts: tuple[np.ndarray, np.ndarray],
) -> TrainingData:
    """Training on the mapped table's rows [rows[0], rows[1]) with the (train, val) window
    `starts`, every pass over them a chunk at a time: the scaler, a mapped scaled copy, and
    the naive MAE and up moves of those rows. Sparse windows train on their rows alone, in
    memory (the same windows in the same order: the same model); `mean` reads the mapping."""
    V, span = len(table.targets), config.lookback_rows + config.horizon
    scaler = chunked_scaler(table.values, rows, config.scaler)
    scaled = scaled_copy(table, scaler)
    compact = None if config.model == "mean" else compact_windows(scaled, list(starts), span)
    series, parts = (scaled, list(starts)) if compact is None else compact
    return TrainingData(
        PanelScaler(scaler.kind, scaler.center[None], scaler.scale[None]),
        series,
        (parts[0], parts[1]),
        slice(*rows) if compact is None else None,  # only mean reads it
        chunked_naive_mae(scaled, rows, V),
        chunked_naive_mae(table.values, rows, V),
        chunked_up_fraction(table.values, rows, V),
    )


def windows(
    table: MappedTable, state: FittedState, config: RunConfig, split: str
) -> tuple[Panel, np.ndarray, np.ndarray]:
    """What `Forecaster.backtest` forecasts of `split` ("train", "val" or "test") of a mapped
    table: (its panel, every `stride`-th window start, the scaled series, mapped)."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"a mapped table is evaluated on train, val or test; got '{split}'")
    L, H = config.lookback_rows, config.horizon
    panel = Panel.single(table)
    parts = state.split if state.data_sha256 == table.sha256 else split_panel(panel, config)
    starts = panel_starts(panel.bounds, parts, split, L, H, config.stride)
    scaler = state.scaler
    scaled = scaled_copy(table, Scaler(scaler.kind, scaler.center[0], scaler.scale[0]))
    return panel, starts, scaled


def tail(table: MappedTable, config: RunConfig) -> pd.DataFrame:
    """The last rows of the table, in memory: what predict reads for the plot of the forecast."""
    rows = max(TAIL_ROWS, 20 * config.lookback_rows)
    return table.frame(slice(max(0, len(table) - rows), len(table)))


__all__ = ["MappedFit", "check_config", "fit", "map_for", "tail", "windows"]
