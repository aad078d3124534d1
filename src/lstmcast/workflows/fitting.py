"""What every workflow shares: reading a table once (`Dataset`), the split a config gives it,
the one fit recipe (`fit_model`), and the one object that holds everything `fit` learns
(`FittedState`), which model files serialise field by field.

The forecaster, the benchmark protocol and the tuning folds all train through `fit_model`:
build the config's model (seeded), give `mean` its training mean, window the split's train
and validation parts, put the scaled series on the device once, and run the one loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from lstmcast import models
from lstmcast.config import RunConfig
from lstmcast.data import (
    Scaler,
    Split,
    TimeSeries,
    check_split,
    prepare,
    split_by_fraction,
    split_by_time,
    split_windows,
)
from lstmcast.data.load import read_table_digest
from lstmcast.engine.training import Callback, TrainResult, train
from lstmcast.errors import ConfigError, DataError
from lstmcast.workflows.calibration import Calibration, check_method

DataLike = str | Path | pd.DataFrame


@dataclass(frozen=True)
class Columns:
    """Which columns a table is read with, and how gaps are handled."""

    targets: tuple[str, ...] | None
    covariates: tuple[str, ...]
    time_col: str | None
    fill: str

    @classmethod
    def of(cls, config: RunConfig) -> Columns:
        return cls(config.targets, tuple(config.covariates), config.time_col, config.fill)


@dataclass(frozen=True)
class Dataset:
    """A table read and validated once: every step of a run takes this, not the file again.

    `sha256` is the digest of the bytes read (or of the DataFrame), `source` names the data in
    messages, `columns` what it was read with.
    """

    series: TimeSeries
    sha256: str
    source: str
    columns: Columns


def source_name(data: DataLike) -> str:
    return "the DataFrame" if isinstance(data, pd.DataFrame) else f"'{data}'"


def read_dataset(
    data: DataLike | Dataset,
    columns: Columns,
    *,
    allow_constant: bool = False,
    require: Sequence[str] = (),
) -> Dataset:
    """Read and validate `data` once (a `Dataset` read with the same columns passes through).

    `require`: columns a fitted model needs (named in the error when the table lacks one)."""
    if isinstance(data, Dataset):
        if data.columns != columns:
            raise ConfigError(
                f"{data.source} was read with {data.columns}, but this run needs {columns}"
            )
        return data
    frame, digest = read_table_digest(data)
    name = source_name(data)
    missing = [c for c in require if c not in frame.columns]
    if missing:
        raise DataError(
            f"{name} lacks column '{missing[0]}', which the model was trained "
            f"on; it needs: {', '.join(require)}"
        )
    series = prepare(
        frame,
        time_col=columns.time_col,
        targets=list(columns.targets) if columns.targets else None,
        covariates=list(columns.covariates),
        fill=columns.fill,
        source=name,
        allow_constant=allow_constant,
    )
    return Dataset(series, digest, name, columns)


def split_for(series: TimeSeries, config: RunConfig) -> Split:
    """The train/val/test row ranges `config` gives `series`; DataError if a part has no window."""
    if config.test_start is not None:  # val_start None: no validation split
        if series.time is None:
            raise DataError("--val-start/--test-start need a time column; the data has none")
        split = split_by_time(series.time, config.val_start, config.test_start)
    else:
        split = split_by_fraction(len(series), config.val_fraction, config.test_fraction)
    check_split(split, config.lookback, config.horizon)
    return split


@dataclass
class FittedModel:
    """What `fit_model` returns: the trained model, what happened, and the windows it used."""

    model: nn.Module
    training: TrainResult
    train_starts: np.ndarray
    val_starts: np.ndarray
    series: torch.Tensor  # the scaled series on the training device


def fit_model(
    scaled: np.ndarray,
    n_targets: int,
    split: Split,
    config: RunConfig,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
) -> FittedModel:
    """Train `config.model` on the train windows of `scaled` (T, F), targets first, with early
    stopping on the validation windows (whose inputs reach back before the boundary)."""
    L, H = config.lookback, config.horizon
    check_method(config)
    model = models.build_for_run(config, scaled.shape[1], n_targets)
    check_method(config, model)
    if isinstance(model, models.Mean):
        train_mean = scaled[split.train[0] : split.train[1], :n_targets].mean(axis=0)
        model.set_train_mean(torch.from_numpy(np.ascontiguousarray(train_mean)))
    model.to(device)
    train_starts = split_windows(split, "train", L, H, config.stride)
    val_starts = split_windows(split, "val", L, H)
    tensor = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32)).to(device)
    result = train(
        model, tensor, train_starts, val_starts, config, n_targets=n_targets, callbacks=callbacks
    )
    return FittedModel(model, result, train_starts, val_starts, tensor)


@dataclass
class FittedState:
    """Everything `Forecaster.fit` learns. Model files hold exactly these fields (weights in
    safetensors, the rest in JSON) and `load` restores every one of them."""

    model: nn.Module
    scaler: Scaler
    targets: list[str]
    covariates: list[str]
    time_col: str | None
    freq: str | None
    split: Split
    naive_mae_scaled: np.ndarray  # (V,) one-step MAE of the train rows, for MASE
    naive_mae_original: np.ndarray
    training: TrainResult
    n_train_windows: int
    data_sha256: str
    calibration: Calibration | None = None  # prediction intervals (None: point forecasts)
