"""`Forecaster`: the scikit-learn-style front door. It composes the small modules: read and
validate the table, split in time order, scale on train, train, backtest, predict."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lstmcast import models
from lstmcast.config import RunConfig, make_config
from lstmcast.data import (
    Split,
    TimeSeries,
    check_split,
    fit_scaler,
    prepare,
    read_table,
    split_by_fraction,
    split_by_time,
    window_starts,
)
from lstmcast.errors import DataError, NotFittedError
from lstmcast.evaluation.backtest import Backtest, forecast_frame, report, run_backtest
from lstmcast.evaluation.metrics import naive_one_step_mae
from lstmcast.training import TrainResult, resolve_device, train

DataLike = str | Path | pd.DataFrame


class Forecaster:
    """Forecast the next `horizon` steps of every target from the last `lookback` rows.

    >>> fc = Forecaster(model="stacked", lookback=10, horizon=1, epochs=20).fit(df)
    >>> fc.evaluate(df)["skill"], fc.predict(df)

    Keyword options are the fields of `lstmcast.config.RunConfig` (the same names as the CLI
    flags and TOML keys). Fitted state ends in `_`.
    """

    def __init__(
        self, model: str = "simple", *, lookback: int = 10, horizon: int = 1, **options: Any
    ) -> None:
        self.config = make_config(
            {"model": model, "lookback": lookback, "horizon": horizon, **options}
        )

    @classmethod
    def from_config(cls, config: RunConfig) -> Forecaster:
        forecaster = cls.__new__(cls)
        forecaster.config = config
        return forecaster

    def get_params(self) -> dict[str, Any]:
        return self.config.to_dict()

    def __repr__(self) -> str:
        cfg = self.config
        return f"Forecaster(model={cfg.model!r}, lookback={cfg.lookback}, horizon={cfg.horizon})"

    # ------------------------------------------------------------------ fit
    def fit(self, data: DataLike, *, progress: bool = False, on_epoch: Any = None) -> Forecaster:
        """Validate `data`, split it in time order, scale on train, train on train windows with
        early stopping on validation windows. Returns self."""
        cfg = self.config
        self.device_ = resolve_device(cfg.device)
        series = load_series(data, cfg)
        split = self._split(series)
        train_rows = series.values[split.train[0] : split.train[1]]
        self.scaler_ = fit_scaler(train_rows, cfg.scaler)
        scaled = self.scaler_.transform(series.values)

        model = models.build_for_run(cfg, series.n_features, series.n_targets)
        if isinstance(model, models.Mean):
            train_mean = scaled[split.train[0] : split.train[1], : series.n_targets].mean(axis=0)
            model.set_train_mean(torch.from_numpy(np.ascontiguousarray(train_mean)))
        model.to(self.device_)

        L, H = cfg.lookback, cfg.horizon
        train_starts = window_starts(
            split.train[0], split.train[0], split.train[1], L, H, cfg.stride
        )
        val_starts = (
            window_starts(0, split.val[0], split.val[1], L, H)
            if _rows(split.val)
            else np.zeros(0, np.int64)
        )
        series_t = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32)).to(self.device_)
        self.training_: TrainResult = train(
            model,
            series_t,
            train_starts,
            val_starts,
            cfg,
            n_targets=series.n_targets,
            on_epoch=on_epoch,
            progress=progress,
        )
        self.model_ = model
        self.targets_ = list(series.targets)
        self.covariates_ = list(series.covariates)
        self.time_col_ = series.time_col
        self.freq_ = series.freq
        self.split_ = split
        self.n_train_windows_ = len(train_starts)
        self.data_sha256_ = data_sha256(data)
        self.naive_mae_original_ = naive_one_step_mae(train_rows[:, : series.n_targets])
        self.naive_mae_scaled_ = naive_one_step_mae(
            scaled[split.train[0] : split.train[1], : series.n_targets]
        )
        return self

    # ------------------------------------------------------------- evaluate
    def backtest(self, data: DataLike, split: str = "test") -> tuple[Backtest, TimeSeries]:
        """Forecasts for every window of the `split` ("train", "val", "test" or "all") of `data`."""
        series = self._prepare(data)
        cfg = self.config
        L, H = cfg.lookback, cfg.horizon
        if split == "all":
            starts = window_starts(0, 0, len(series), L, H)
        else:
            parts = self._split(series)
            if split not in ("train", "val", "test"):
                raise DataError(f"unknown split '{split}'; allowed: train, val, test, all")
            start, end = getattr(parts, split)
            first_input = start if split == "train" else 0
            starts = window_starts(first_input, start, end, L, H)
        if len(starts) == 0:
            raise DataError(
                f"the {split} split of {_source_name(data)} has no complete window "
                f"(lookback {L} + horizon {H}); use more data"
            )
        scaled = self.scaler_.transform(series.values)
        result = run_backtest(
            self.model_, scaled, self.scaler_, starts, L, H, series.n_targets, self.device_
        )
        return result, series

    def evaluate(self, data: DataLike, split: str = "test") -> dict[str, Any]:
        """Metrics of the model and of repeat_last on `split`, scaled and in original units,
        overall, per variable and per horizon step, with the skill score."""
        result, _ = self.backtest(data, split)
        metrics = report(
            result,
            self.targets_,
            self.config.model,
            self.naive_mae_scaled_,
            self.naive_mae_original_,
        )
        return {
            "split": split,
            "lookback": self.config.lookback,
            "horizon": self.config.horizon,
            **metrics,
        }

    def forecast_table(self, data: DataLike, split: str = "test") -> pd.DataFrame:
        """Every forecast of `split` beside the actual value and repeat_last, original units."""
        result, series = self.backtest(data, split)
        return forecast_frame(result, self.targets_, series.time)

    # -------------------------------------------------------------- predict
    def predict(self, data: DataLike) -> pd.DataFrame:
        """The `horizon` steps after the last row of `data`, in original units, indexed by the
        timestamps that continue its frequency (or by row number when it has no time column)."""
        series = self._prepare(data)
        L = self.config.lookback
        if len(series) < L:
            raise DataError(
                f"{_source_name(data)} has {len(series)} rows but lookback {L} needs at least {L}"
            )
        scaled = self.scaler_.transform(series.values[-L:])
        window = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32)).to(self.device_)
        self.model_.eval()
        with torch.no_grad():
            forecast = self.model_(window[None]).float().cpu().numpy()[0]  # (H, V)
        index = series.future_index(self.config.horizon)
        frame = pd.DataFrame(self.scaler_.inverse(forecast), columns=self.targets_)
        frame.index = pd.Index(index, name=series.time_col or "step")
        return frame

    def save(self, path: str | Path) -> Path:
        from lstmcast.io import save

        return save(self, path)

    # -------------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This Forecaster is not fitted yet; call fit(data) or lstmcast.load(path) first."
            )

    def _prepare(self, data: DataLike) -> TimeSeries:
        self._check_fitted()
        frame = read_table(data)
        needed = [*self.targets_, *self.covariates_]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(
                f"{_source_name(data)} lacks column '{missing[0]}', which the model was trained "
                f"on; it needs: {', '.join(needed)}"
            )
        return prepare(
            frame,
            time_col=self.time_col_,
            targets=self.targets_,
            covariates=self.covariates_,
            fill=self.config.fill,
            source=_source_name(data),
            allow_constant=True,
        )

    def split(self, series: TimeSeries) -> Split:
        """The train/val/test row ranges this config gives `series` (the ones `fit` uses)."""
        return self._split(series)

    def _split(self, series: TimeSeries) -> Split:
        cfg = self.config
        if cfg.test_start is not None:  # val_start None: no validation split
            if series.time is None:
                raise DataError("--val-start/--test-start need a time column; the data has none")
            split = split_by_time(series.time, cfg.val_start, cfg.test_start)
        else:
            split = split_by_fraction(len(series), cfg.val_fraction, cfg.test_fraction)
        check_split(split, cfg.lookback, cfg.horizon)
        return split


def load_series(data: DataLike, config: RunConfig) -> TimeSeries:
    """Read and validate `data` with the columns and fill policy of `config`."""
    return prepare(
        read_table(data),
        time_col=config.time_col,
        targets=list(config.targets) if config.targets else None,
        covariates=list(config.covariates),
        fill=config.fill,
        source=_source_name(data),
    )


def data_sha256(data: DataLike) -> str:
    """sha256 of the data file's bytes, or of the DataFrame's contents."""
    if isinstance(data, pd.DataFrame):
        hashed = pd.util.hash_pandas_object(data, index=True).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()
    digest = hashlib.sha256()
    with open(data, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_name(data: DataLike) -> str:
    return "the DataFrame" if isinstance(data, pd.DataFrame) else f"'{data}'"


def _rows(part: tuple[int, int]) -> int:
    return part[1] - part[0]
