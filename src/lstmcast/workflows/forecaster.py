"""`Forecaster`: the scikit-learn-style front door. It composes the layers below: read and
validate the table once, split it in time order, scale on train, fit (`fitting.fit_model`),
forecast every window of a split, predict; `save`/`load` go through `modelfile`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lstmcast.config import RunConfig, make_config
from lstmcast.data import Scaler, Split, TimeSeries, fit_scaler, split_windows, window_starts
from lstmcast.engine.training import Callback, TrainResult, resolve_device
from lstmcast.errors import DataError, NotFittedError
from lstmcast.evaluation.backtest import (
    Backtest,
    forecast_frame,
    level_name,
    make_backtest,
    report,
)
from lstmcast.evaluation.metrics import naive_one_step_mae
from lstmcast.workflows import modelfile
from lstmcast.workflows.calibration import (
    Outputs,
    adaptive_widths,
    calibrate,
    check_levels,
    cqr_scores,
    model_outputs,
    need,
)
from lstmcast.workflows.calibration import bands as make_bands
from lstmcast.workflows.fitting import (
    Columns,
    DataLike,
    Dataset,
    FittedState,
    fit_model,
    read_dataset,
    split_for,
)

SPLITS = ("train", "val", "test", "all")


class Forecaster:
    """Forecast the next `horizon` steps of every target from the last `lookback` rows.

    >>> fc = Forecaster(model="stacked", lookback=10, horizon=1, epochs=20).fit(df)
    >>> fc.evaluate(df)["skill"], fc.predict(df)

    Keyword options are the fields of `lstmcast.config.RunConfig` (the same names as the CLI
    flags and TOML keys). Everything `fit` learns is one `FittedState`, `state_`.
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
    def fit(self, data: DataLike | Dataset, *, callbacks: Sequence[Callback] = ()) -> Forecaster:
        """Validate `data`, split it in time order, scale on train, train on train windows with
        early stopping on validation windows. `callbacks` see every epoch (see
        `lstmcast.engine.training.Epoch`). Returns self."""
        cfg = self.config
        device = resolve_device(cfg.device)
        dataset = read_dataset(data, Columns.of(cfg))
        series = dataset.series
        split = split_for(series, cfg)
        train_rows = series.values[split.train[0] : split.train[1]]
        scaler = fit_scaler(train_rows, cfg.scaler)
        scaled = scaler.transform(series.values)
        fitted = fit_model(scaled, series.n_targets, split, cfg, device, callbacks)
        V = series.n_targets
        calibration = calibrate(fitted.model, fitted.series, scaled, fitted.val_starts, V, cfg)
        self.device_ = device
        self.state_ = FittedState(
            model=fitted.model,
            scaler=scaler,
            targets=list(series.targets),
            covariates=list(series.covariates),
            time_col=series.time_col,
            freq=series.freq,
            split=split,
            naive_mae_scaled=naive_one_step_mae(scaled[split.train[0] : split.train[1], :V]),
            naive_mae_original=naive_one_step_mae(train_rows[:, :V]),
            training=fitted.training,
            n_train_windows=len(fitted.train_starts),
            data_sha256=dataset.sha256,
            calibration=calibration,
        )
        return self

    # Read-only views of the fitted state, for convenience.
    @property
    def model_(self) -> nn.Module:
        return self._state().model

    @property
    def scaler_(self) -> Scaler:
        return self._state().scaler

    @property
    def split_(self) -> Split:
        return self._state().split

    @property
    def targets_(self) -> list[str]:
        return self._state().targets

    @property
    def training_(self) -> TrainResult:
        return self._state().training

    # ------------------------------------------------------------- evaluate
    def backtest(
        self,
        data: DataLike | Dataset,
        split: str = "test",
        intervals: Sequence[float] | None = None,
    ) -> tuple[Backtest, TimeSeries]:
        """Forecasts for every window of the `split` ("train", "val", "test" or "all") of `data`,
        with the prediction intervals at `intervals` (default: the levels it was trained for;
        () for none)."""
        state = self._state()
        levels = self._levels(intervals)
        dataset = self.read(data)
        series = dataset.series
        L, H = self.config.lookback, self.config.horizon
        if split not in SPLITS:
            raise DataError(f"unknown split '{split}'; allowed: {', '.join(SPLITS)}")
        if split == "all":
            starts = window_starts(0, 0, len(series), L, H)
        else:
            # the table fit read: its split is known; any other table is split like it
            same = dataset.sha256 == state.data_sha256 and len(series) == state.split.test[1]
            parts = state.split if same else split_for(series, self.config)
            starts = split_windows(parts, split, L, H)
        if len(starts) == 0:
            raise DataError(
                f"the {split} split of {dataset.source} has no complete window "
                f"(lookback {L} + horizon {H}); use more data"
            )
        scaled = state.scaler.transform(series.values)
        tensor = self._on_device(scaled)
        outputs = self._outputs(tensor, starts, levels)
        bands = None
        if levels:
            V = series.n_targets
            last = scaled[starts + L - 1, :V].astype(np.float64)
            actual = scaled[starts[:, None] + L + np.arange(H), :V].astype(np.float64)
            bands = make_bands(
                need(state.calibration, "levels"), levels, outputs, last, actual=actual
            )
        result = make_backtest(
            scaled,
            state.scaler,
            starts,
            L,
            H,
            series.n_targets,
            outputs.point,
            bands=bands,
            quantiles_scaled=outputs.quantiles,
            taus=self.config.head_quantiles() if outputs.quantiles is not None else (),
        )
        return result, series

    def report(self, forecasts: Backtest, split: str = "test") -> dict[str, Any]:
        """Metrics of the model and of repeat_last on `forecasts`, scaled and in original
        units, overall, per variable and per horizon step, with the skill score."""
        state = self._state()
        metrics = report(
            forecasts,
            state.targets,
            self.config.model,
            state.naive_mae_scaled,
            state.naive_mae_original,
        )
        if "intervals" in metrics and state.calibration is not None:
            metrics["intervals"]["method"] = state.calibration.method
            metrics["intervals"]["calibration_windows"] = state.calibration.n_windows
        return {
            "split": split,
            "lookback": self.config.lookback,
            "horizon": self.config.horizon,
            **metrics,
        }

    def evaluate(
        self,
        data: DataLike | Dataset,
        split: str = "test",
        intervals: Sequence[float] | None = None,
    ) -> dict[str, Any]:
        """`report` of the forecasts of `split` of `data` (with intervals, see `backtest`)."""
        return self.report(self.backtest(data, split, intervals)[0], split)

    def forecast_table(
        self,
        data: DataLike | Dataset,
        split: str = "test",
        intervals: Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """Every forecast of `split` beside the actual value and repeat_last, original units
        (and lower_/upper_ columns per interval level)."""
        result, series = self.backtest(data, split, intervals)
        return forecast_frame(result, self.targets_, series.time)

    # -------------------------------------------------------------- predict
    def predict(
        self, data: DataLike | Dataset, intervals: Sequence[float] | None = None
    ) -> pd.DataFrame:
        """The `horizon` steps after the last row of `data`, in original units, indexed by the
        timestamps that continue its frequency (or by row number when it has no time column).
        With intervals (default: the levels it was trained for), columns `<target>_lower_80`
        and `<target>_upper_80` per level follow the point forecasts."""
        state = self._state()
        levels = self._levels(intervals)
        dataset = self.read(data)
        series = dataset.series
        L = self.config.lookback
        if len(series) < L:
            raise DataError(
                f"{dataset.source} has {len(series)} rows but lookback {L} needs at least {L}"
            )
        scaled = state.scaler.transform(series.values[-L:])
        window = self._on_device(scaled)
        outputs = self._outputs(window, np.zeros(1, dtype=np.int64), levels)
        index = series.future_index(self.config.horizon)
        frame = pd.DataFrame(state.scaler.inverse(outputs.point[0]), columns=state.targets)
        if levels:
            last = scaled[-1:, : len(state.targets)].astype(np.float64)
            alpha_end = self._adaptive_state(series, levels)
            bands = make_bands(
                need(state.calibration, "levels"), levels, outputs, last, alpha_end=alpha_end
            )
            for k, level in enumerate(levels):
                lower = state.scaler.inverse(bands.lower[0, ..., k])  # (H, V)
                upper = state.scaler.inverse(bands.upper[0, ..., k])
                for v, target in enumerate(state.targets):
                    frame[f"{target}_lower_{level_name(level)}"] = lower[:, v]
                    frame[f"{target}_upper_{level_name(level)}"] = upper[:, v]
        frame.index = pd.Index(index, name=series.time_col or "step")
        return frame

    def save(self, path: str | Path) -> Path:
        """Write the model files (see `lstmcast.workflows.modelfile`) into directory `path`."""
        return modelfile.save(self.config, self._state(), path)

    # -------------------------------------------------------------- helpers
    def _state(self) -> FittedState:
        state: FittedState | None = getattr(self, "state_", None)
        if state is None:
            raise NotFittedError(
                "This Forecaster is not fitted yet; call fit(data) or lstmcast.load(path) first."
            )
        return state

    def _levels(self, intervals: Sequence[float] | None) -> tuple[float, ...]:
        """The interval levels asked for: the trained ones by default, calibrated ones only."""
        state = self._state()
        if intervals is None:
            return state.calibration.levels if state.calibration is not None else ()
        levels = make_config({"intervals": list(intervals)}).intervals  # validated, sorted
        check_levels(state.calibration, levels, "this model")
        return levels

    def _on_device(self, scaled: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32)).to(self.device_)

    def _adaptive_state(
        self, series: TimeSeries, levels: tuple[float, ...]
    ) -> dict[float, np.ndarray] | None:
        """Adaptive conformal's rates after every window of `series` whose targets lie after
        the validation split (None when the intervals are not adaptive)."""
        calibration = self._state().calibration
        if calibration is None or not calibration.gamma:
            return None
        L, H, V = self.config.lookback, self.config.horizon, len(self._state().targets)
        starts = window_starts(0, min(calibration.calibration_end, len(series)), len(series), L, H)
        rates = {}
        if len(starts) == 0:  # nothing after validation yet: the nominal rates
            shape = (H, V)
            return {level: np.full(shape, 1 - level) for level in levels}
        scaled = self._state().scaler.transform(series.values)
        tensor = self._on_device(scaled)
        outputs = self._outputs(tensor, starts, levels)
        actual = scaled[starts[:, None] + L + np.arange(H), :V].astype(np.float64)
        for level in levels:
            if outputs.quantiles is not None:  # cqr
                scores = cqr_scores(outputs.quantiles, calibration.quantiles, level, actual)
            else:
                scores = np.abs(actual - outputs.point)
            rates[level] = adaptive_widths(calibration, level, scores)[1]
        return rates

    def _outputs(
        self, series: torch.Tensor, starts: np.ndarray, levels: tuple[float, ...]
    ) -> Outputs:
        """The model's forecasts of these windows (mc-dropout's samples only when asked)."""
        calibration = self._state().calibration
        method = calibration.method if calibration is not None and levels else None
        return model_outputs(
            self._state().model,
            series,
            starts,
            self.config.lookback,
            method,
            self.config.head_quantiles(),
            self.config.mc_samples,
        )

    def read(self, data: DataLike | Dataset) -> Dataset:
        """`data` with the fitted model's columns (constant columns allowed: a flag may be flat
        over a short recent window; the scaler came from the training rows)."""
        state = self._state()
        needed = [*state.targets, *state.covariates]
        if isinstance(data, Dataset):
            have = [*data.series.targets, *data.series.covariates]
            if have != needed:
                raise DataError(
                    f"{data.source} has columns {', '.join(have)}; the model was trained on "
                    f"{', '.join(needed)}"
                )
            return data
        columns = Columns(
            tuple(state.targets), tuple(state.covariates), state.time_col, self.config.fill
        )
        return read_dataset(data, columns, allow_constant=True, require=needed)


def load(path: str | Path, device: str = "auto") -> Forecaster:
    """Load a model directory written by `save`; anything else raises `ModelFileError`."""
    config, state = modelfile.load(path)
    forecaster = Forecaster.from_config(config)
    forecaster.device_ = resolve_device(device)
    state.model.to(forecaster.device_).eval()
    forecaster.state_ = state
    return forecaster


def save(forecaster: Forecaster, path: str | Path) -> Path:
    """`forecaster.save(path)`."""
    return forecaster.save(path)
