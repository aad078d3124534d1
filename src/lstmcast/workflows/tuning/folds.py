"""What one trial trains and scores: walk-forward folds over the rows before the test split,
and fitting a model on one fold with the one training loop.

Folds (K of them) step back from the ordinary split by one validation block at a time; every
fold trains on all rows before its block (an expanding window):

    rows:   0 ............................................ test start | test (never used)
    fold K: [train ...................................][val]            the ordinary split
    fold 2: [train .............................][val]
    fold 1: [train .......................][val]

Each fold refits the scaler on its own training rows and sees no row after its validation
block, so test rows are never read while tuning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lstmcast.checks import check_int
from lstmcast.config import RunConfig
from lstmcast.data import Split, TimeSeries, fit_scaler, split_windows
from lstmcast.engine.batching import predict_windows
from lstmcast.engine.checkpoint import Checkpoint
from lstmcast.engine.training import Epoch, TrainResult
from lstmcast.errors import ConfigError, DataError
from lstmcast.workflows.fitting import fit_model

Report = Callable[[int, float], None]  # (epoch, validation MSE) after every epoch


@dataclass(frozen=True)
class Fold:
    """Train on rows `train` = (0, a), score on the windows whose targets lie in `val` = (a, b)."""

    train: tuple[int, int]
    val: tuple[int, int]

    def split(self) -> Split:
        """The fold as a split whose test part is empty (no row after `val` is ever used)."""
        return Split(self.train, self.val, (self.val[1], self.val[1]))


def fold_ranges(split: Split, folds: int | None = None) -> list[Fold]:
    """The folds of the objective: the ordinary train/val split when `folds` is None, else
    `folds` expanding-window folds, each validation block as long as the split's, the last
    one ending where the test split starts."""
    block = split.val[1] - split.val[0]
    if block == 0:
        raise ConfigError(
            "tuning needs a validation split to score trials; set val_fraction > 0 "
            "(or val_start with test_start)"
        )
    if folds is None:
        return [Fold(split.train, split.val)]
    check_int("folds", folds)
    end = split.val[1]
    result = []
    for k in range(folds):
        val_end = end - (folds - 1 - k) * block
        result.append(Fold((0, val_end - block), (val_end - block, val_end)))
    return result


def check_folds(folds: list[Fold], lookback: int, horizon: int) -> None:
    """Raise DataError naming the first fold too short for `lookback` and `horizon`."""
    for k, fold in enumerate(folds, start=1):
        rows = fold.train[1] - fold.train[0]
        if rows < lookback + horizon:
            raise DataError(
                f"fold {k} of {len(folds)} has {rows} training rows but lookback {lookback} + "
                f"horizon {horizon} needs {lookback + horizon}; use fewer --folds or smaller "
                f"search.lookback choices"
            )
        if fold.val[1] - fold.val[0] < horizon:
            raise DataError(
                f"the validation block has {fold.val[1] - fold.val[0]} rows but horizon "
                f"{horizon} needs {horizon}; raise val_fraction"
            )


def fit_fold(
    series: TimeSeries,
    config: RunConfig,
    fold: Fold,
    device: torch.device,
    report: Report | None = None,
    checkpoint: Checkpoint | None = None,
) -> tuple[TrainResult, float]:
    """Train `config`'s model on the fold's training rows with early stopping on its validation
    windows; return the training result and the validation MSE (scaled) of the kept weights.

    The objective is always MSE, whatever `config.loss` trains with, so trials that train with
    different losses stay comparable; `report` gets that MSE after every epoch (for pruning).
    `checkpoint`: where the fold's training saves every epoch (and resumes).
    """
    L, H, V = config.lookback_rows, config.horizon, series.n_targets
    values = series.values[: fold.val[1]]  # rows after the validation block stay unseen
    scaler = fit_scaler(values[fold.train[0] : fold.train[1]], config.scaler)
    scaled = np.ascontiguousarray(scaler.transform(values), dtype=np.float32)
    split = fold.split()
    val_starts = split_windows(split, "val", L, H)
    actual = scaled[val_starts[:, None] + L + np.arange(H), :V]  # (N, H, V)
    tensor: list[torch.Tensor] = []  # the scaled rows on the device, made on first use

    def mse(model: torch.nn.Module) -> float:
        if not tensor:
            tensor.append(torch.from_numpy(scaled).to(device))
        predicted = predict_windows(model, tensor[0], val_starts, L)  # (N, H, V)
        if predicted.ndim == 4:  # a quantile head: score its median, the point forecast
            predicted = predicted[..., config.head_quantiles().index(0.5)]
        return float(np.mean((predicted.astype(np.float64) - actual) ** 2))

    def on_epoch(epoch: Epoch) -> None:
        if report is not None and epoch.kept:
            report(epoch.number, epoch.val_loss if config.loss == "mse" else mse(epoch.model))

    fitted = fit_model(
        scaled, V, split, config, device, callbacks=[on_epoch], checkpoint=checkpoint
    )
    if not tensor:
        tensor.append(fitted.series)
    return fitted.training, mse(fitted.model)
