"""What every workflow shares: reading a table once (`Dataset`), the split a config gives it,
the one fit recipe (`fit_model`), and the one object that holds everything `fit` learns
(`FittedState`), which model files serialise field by field.

The forecaster, the benchmark protocol and the tuning folds all train through `fit_model`:
build the config's model (seeded), give `mean` its training mean, window the split's train
and validation parts, put the scaled series on the device once, and run the one loop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lstmcast import models
from lstmcast.config import RunConfig
from lstmcast.data import (
    Split,
    TimeSeries,
    check_split,
    split_by_fraction,
    split_by_time,
    split_windows,
    transform,
)
from lstmcast.data.calendar import calendar_features, calendar_spec, check_holidays
from lstmcast.data.load import read_table_digest
from lstmcast.data.macro import read_macro
from lstmcast.data.panel import (
    Panel,
    PanelScaler,
    PanelSplit,
    Static,
    panel_splits,
    prepare_panel,
    with_macro,
)
from lstmcast.data.validate import index_columns
from lstmcast.engine.batching import Layout, gather_targets
from lstmcast.engine.checkpoint import Checkpoint
from lstmcast.engine.training import Callback, TrainResult, train
from lstmcast.errors import ConfigError, DataError, ModelFileError
from lstmcast.evaluation.baselines import BaselineState
from lstmcast.models import CovariateSpec, embedding_width
from lstmcast.workflows.calibration import Calibration, check_method, member_outputs

DataLike = str | Path | pd.DataFrame


@dataclass(frozen=True)
class Columns:
    """Which columns a table is read with, in which roles, and how gaps are handled."""

    targets: tuple[str, ...] | None
    covariates: tuple[str, ...]
    time_col: str | None
    fill: str
    id_col: str | None = None
    future_covariates: tuple[str, ...] = ()
    static: tuple[str, ...] = ()
    macro: str | None = None  # a macro table joined as-of (its columns become past covariates)
    release_lag: str | None = None
    transform: str = "none"  # the targets' transform (see lstmcast.data.transform)
    duplicates: str = "error"  # rows repeating a timestamp (see lstmcast.choices.Duplicates)

    @classmethod
    def of(cls, config: RunConfig) -> Columns:
        return cls(
            config.targets,
            tuple(config.covariates),
            config.time_col,
            config.fill,
            config.id_col,
            tuple(config.future_covariates),
            tuple(config.static),
            config.macro,
            config.release_lag,
            config.transform,
            config.duplicates,
        )


@dataclass(frozen=True)
class Dataset:
    """A table read and validated once: every step of a run takes this, not the file again.

    `panel` holds its series (a wide table: one), `sha256` is the digest of the bytes read
    (or of the DataFrame), `source` names the data in messages, `columns` what it was read
    with, `future` the rows after each series' last observed target (for `predict`: values of
    covariates known in advance; None when it was not asked for).
    """

    panel: Panel
    sha256: str
    source: str
    columns: Columns
    future: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()  # what the reader decided for the user (reported with a run)

    @property
    def series(self) -> TimeSeries:
        """The one series of a wide table (the workflows that take no panels yet use this)."""
        if self.panel.id_col is not None:
            raise ConfigError(
                f"{self.source} is read in long format (--id-col {self.panel.id_col}); this "
                f"command takes one wide table (without --id-col)"
            )
        return self.panel.series(0)


def source_name(data: DataLike) -> str:
    return "the DataFrame" if isinstance(data, pd.DataFrame) else f"'{data}'"


def read_dataset(
    data: DataLike | Dataset,
    columns: Columns,
    *,
    allow_constant: bool = False,
    require: Sequence[str] = (),
    future_rows: bool = False,
) -> Dataset:
    """Read and validate `data` once (a `Dataset` read with the same columns passes through).

    `require`: columns a fitted model needs (named in the error when the table lacks one).
    `future_rows`: the rows at the end of each series whose targets are all empty are kept
    apart in `Dataset.future` (the known-in-advance values a forecast reads)."""
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
    future = None
    if future_rows and columns.targets:
        frame, future = split_future_rows(frame, list(columns.targets), columns.id_col)
    panel = prepare_panel(
        frame,
        id_col=columns.id_col,
        time_col=columns.time_col,
        targets=list(columns.targets) if columns.targets else None,
        covariates=list(columns.covariates),
        future_covariates=list(columns.future_covariates),
        static=list(columns.static),
        fill=columns.fill,
        source=name,
        allow_constant=allow_constant,
        duplicates=columns.duplicates,
    )
    if columns.macro is not None:
        panel = with_macro(panel, read_macro(columns.macro, columns.release_lag))
    kinds = transform.resolve(columns.transform, panel.targets)
    if not transform.is_identity(kinds):
        panel = transform.transform_panel(panel, kinds, name)
    notes = []
    skipped = [c for c in index_columns(frame) if c not in panel.columns]
    if skipped and columns.targets is None:
        notes.append(
            f"column(s) {', '.join(skipped)} number the rows (an index export): not forecast"
        )
    if panel.time is None:
        notes.append(f"{name} has no time column: rows are taken in file order")
    return Dataset(panel, digest, name, columns, future, tuple(notes))


def split_future_rows(
    frame: pd.DataFrame, targets: list[str], id_col: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(observed rows, future rows): a row is a future row when its targets are all empty and
    so are those of every later row of its series (in table order)."""
    present = [t for t in targets if t in frame.columns]
    if not present:
        return frame, frame.iloc[:0]
    cells = frame[present]
    blank = cells.isna() | cells.astype("string").apply(lambda c: c.str.strip() == "").fillna(True)
    empty = blank.all(axis=1)
    backwards = empty.iloc[::-1].astype(int)
    if id_col is not None and id_col in frame.columns:
        trailing = backwards.groupby(frame[id_col].iloc[::-1].astype(str)).cummin()
    else:
        trailing = backwards.cummin()
    trailing = trailing.iloc[::-1].astype(bool).to_numpy()
    return frame[~trailing].reset_index(drop=True), frame[trailing].reset_index(drop=True)


def split_for(series: TimeSeries, config: RunConfig) -> Split:
    """The train/val/test row ranges `config` gives `series`; DataError if a part has no window."""
    if config.test_start is not None:  # val_start None: no validation split
        if series.time is None:
            raise DataError("--val-start/--test-start need a time column; the data has none")
        split = split_by_time(series.time, config.val_start, config.test_start)
    else:
        split = split_by_fraction(len(series), config.val_fraction, config.test_fraction)
    check_split(split, config.lookback_rows, config.horizon)
    return split


def split_panel(panel: Panel, config: RunConfig) -> PanelSplit:
    """Every series' split under `config` (see `lstmcast.data.panel.panel_splits`)."""
    return panel_splits(
        panel,
        config.lookback_rows,
        config.horizon,
        config.val_fraction,
        config.test_fraction,
        config.val_start,
        config.test_start,
    )


# ------------------------------------------------------------------ inputs known in advance
@dataclass(frozen=True, eq=False)
class Inputs:
    """What a model reads besides the window of targets and past covariates, and how each is
    encoded; model files store it so that new data is encoded the same way.

    `ids` the series the model knows (their scalers are the rows of the `PanelScaler`);
    `calendar` the calendar features (cyclic sin/cos pairs), `holidays` the country of the
    holiday flag; `static` each series' static values, the numeric ones standardised across
    series with `static_center`/`static_scale`; `id_embedding` the width of the id's
    embedding (0: none).
    """

    ids: tuple[str, ...]
    id_col: str | None = None
    future_covariates: tuple[str, ...] = ()
    calendar: tuple[str, ...] = ()
    holidays: str | None = None
    static: Static = field(default_factory=Static)
    static_center: np.ndarray = field(default_factory=lambda: np.zeros(0))
    static_scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    id_embedding: int = 0

    @property
    def n_calendar(self) -> int:
        return 2 * len(self.calendar) + (1 if self.holidays else 0)

    def layout(self, n_targets: int, n_past: int) -> Layout:
        n_future = len(self.future_covariates) + self.n_calendar
        n_codes = len(self.static.categorical_names) + (1 if self.id_embedding else 0)
        return Layout(
            n_targets=n_targets,
            n_inputs=n_targets + n_past + n_future,
            n_future=n_future,
            n_static=len(self.static.numeric_names),
            n_codes=n_codes,
        )

    def spec(self, horizon: int, layout: Layout) -> CovariateSpec | None:
        """The model's context vector, or None when the model reads none."""
        if not layout.has_context:
            return None
        cards = [len(self.static.categories[name]) for name in self.static.categorical_names]
        widths = [embedding_width(c) for c in cards]
        if self.id_embedding:
            cards.append(len(self.ids))
            widths.append(self.id_embedding)
        return CovariateSpec(horizon, layout.n_future, layout.n_static, tuple(cards), tuple(widths))

    def index_of(self, ids: Sequence[str], source: str) -> np.ndarray:
        """The model's index of each of `ids`; DataError names an id the model never saw."""
        known = {name: k for k, name in enumerate(self.ids)}
        unknown = [name for name in ids if name not in known]
        if unknown:
            raise DataError(
                f"{source}: series '{unknown[0]}' was not in the training data; the model "
                f"knows {len(self.ids)} series ({', '.join(self.ids[:5])}"
                f"{', ...' if len(self.ids) > 5 else ''})"
            )
        return np.array([known[name] for name in ids], dtype=np.int64)

    def design(
        self,
        values: np.ndarray,
        series: np.ndarray,
        time: pd.DatetimeIndex | None,
        scaler: PanelScaler,
    ) -> np.ndarray:
        """The series tensor's rows (T, W) float32 for rows `values` (T, F) of the model's
        series `series` (T,) at `time`: the scaled values, the calendar, the static values and
        the category codes, in `layout`'s column order. Every column of a row depends on that
        row alone (and its series), never on later rows."""
        parts = [scaler.transform_rows(values, series)]
        if self.n_calendar:
            if time is None:
                raise DataError("--calendar/--holidays need a time column; the data has none")
            parts.append(calendar_features(time, self.calendar, self.holidays)[1])
        if self.static.numeric_names:
            numeric = (self.static.numeric - self.static_center) / self.static_scale
            parts.append(numeric[series])
        if self.static.categorical_names:
            parts.append(self.static.codes[series].astype(np.float64))
        if self.id_embedding:
            parts.append(series[:, None].astype(np.float64))
        if len(parts) == 1:
            return np.ascontiguousarray(parts[0], dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        st = self.static
        return {
            "ids": list(self.ids),
            "id_col": self.id_col,
            "future_covariates": list(self.future_covariates),
            "calendar": list(self.calendar),
            "holidays": self.holidays,
            "static_numeric": list(st.numeric_names),
            "static_values": st.numeric.tolist(),
            "static_center": self.static_center.tolist(),
            "static_scale": self.static_scale.tolist(),
            "static_categorical": list(st.categorical_names),
            "static_codes": st.codes.tolist(),
            "categories": {k: list(v) for k, v in st.categories.items()},
            "id_embedding": self.id_embedding,
        }

    @classmethod
    def from_dict(cls, d: Any) -> Inputs:
        if d is None:
            return cls(ids=("",))
        try:
            n = len(d["ids"])
            numeric_names = tuple(d.get("static_numeric", ()))
            categorical = tuple(d.get("static_categorical", ()))
            static = Static(
                numeric_names=numeric_names,
                numeric=np.asarray(
                    d.get("static_values") or np.zeros((n, 0)), dtype=np.float64
                ).reshape(n, len(numeric_names)),
                categorical_names=categorical,
                codes=np.asarray(d.get("static_codes") or np.zeros((n, 0)), dtype=np.int64).reshape(
                    n, len(categorical)
                ),
                categories={k: tuple(map(str, v)) for k, v in (d.get("categories") or {}).items()},
            )
            inputs = cls(
                ids=tuple(str(i) for i in d["ids"]),
                id_col=d.get("id_col"),
                future_covariates=tuple(d.get("future_covariates", ())),
                calendar=calendar_spec(d.get("calendar") or "none", None),
                holidays=check_holidays(d.get("holidays")),
                static=static,
                static_center=np.asarray(d.get("static_center", []), dtype=np.float64),
                static_scale=np.asarray(d.get("static_scale", []), dtype=np.float64),
                id_embedding=int(d.get("id_embedding", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ModelFileError(f"inputs: malformed record ({err})") from err
        if any(name not in static.categories for name in categorical) or (
            static.codes.size and static.codes.min() < 0
        ):
            raise ModelFileError("inputs: a static category lacks its labels")
        return inputs


def make_inputs(panel: Panel, config: RunConfig, split: PanelSplit) -> Inputs:
    """The `Inputs` of a run on `panel`: the calendar resolved for its frequency and for the
    longest training span, the static numeric values standardised across the series."""
    calendar = calendar_spec(
        config.calendar,
        panel.freq,
        time_present=panel.time is not None,
        span_days=_train_span_days(panel, split),
    )
    if config.holidays and panel.time is None:
        raise DataError("--holidays needs a time column; the data has none")
    st, n = panel.static, panel.n_series
    numeric = st.numeric.reshape(n, len(st.numeric_names))
    static = Static(
        st.numeric_names,
        numeric,
        st.categorical_names,
        st.codes.reshape(n, len(st.categorical_names)),
        dict(st.categories),
    )
    center = numeric.mean(axis=0) if numeric.size else np.zeros(numeric.shape[1])
    spread = numeric.std(axis=0) if numeric.size else np.ones(numeric.shape[1])
    return Inputs(
        ids=panel.ids,
        id_col=panel.id_col,
        future_covariates=panel.future_covariates,
        calendar=calendar,
        holidays=config.holidays,
        static=static,
        static_center=center,
        static_scale=np.where(spread > 1e-12, spread, 1.0),
        id_embedding=config.id_embedding,
    )


def _train_span_days(panel: Panel, split: PanelSplit) -> float | None:
    """The longest time any series' training rows span, in days (None without time)."""
    if panel.time is None:
        return None
    spans = [
        (panel.time[int(panel.bounds[i]) + s.train[1] - 1] - panel.time[int(panel.bounds[i])])
        / pd.Timedelta(days=1)
        for i, s in enumerate(split.splits)
        if s is not None
    ]
    return max(spans) if spans else None


@dataclass
class FittedModel:
    """What `fit_model` returns: the trained model, what happened, and the windows it used."""

    model: nn.Module
    training: TrainResult
    train_starts: np.ndarray
    val_starts: np.ndarray
    series: torch.Tensor  # the scaled series on the training device
    members: dict[str, Any] | None = None  # an ensemble's members (see `check_members`)


def split_starts(split: Split, config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """The train and validation window starts of one series' `split`."""
    L, H = config.lookback_rows, config.horizon
    return split_windows(split, "train", L, H, config.stride), split_windows(split, "val", L, H)


def fingerprint(config: RunConfig, data_sha256: str, part: str = "") -> str:
    """What a training checkpoint belongs to: the options that shape training, the data, and
    `part` (e.g. a backtest fold's rows). The device is left out: a run may resume elsewhere
    (if not bit for bit)."""
    options = {k: v for k, v in config.to_dict().items() if k != "device"}
    content = {"config": options, "data": data_sha256, "part": part}
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def fit_model(
    scaled: np.ndarray,
    layout: Layout | int,
    windows: tuple[np.ndarray, np.ndarray] | Split,
    config: RunConfig,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    covariates: CovariateSpec | None = None,
    train_rows: slice | np.ndarray | None = None,
    checkpoint: Checkpoint | None = None,
) -> FittedModel:
    """Train `config.model` on the train windows of `scaled` (T, W) with early stopping on the
    validation windows (whose inputs reach back before the boundary).

    `layout`: the column roles of `scaled` (an int V: plain, the first V columns the targets);
    `windows`: (train starts, val starts), or one series' `Split`; `covariates` the model's
    context vector; `train_rows` the training rows (`mean` learns their mean; default: the
    rows of the train windows' split); `checkpoint` where the loop saves (and resumes)."""
    if isinstance(layout, int):
        layout = Layout.plain(scaled.shape[1], layout)
    if isinstance(windows, Split):
        train_rows = slice(*windows.train) if train_rows is None else train_rows
        windows = split_starts(windows, config)
    train_starts, val_starts = windows
    V = layout.n_targets
    check_method(config)
    model = models.build_for_run(config, layout.n_inputs, V, covariates=covariates)
    check_method(config, models.core(model))
    core = models.core(model)
    if isinstance(core, models.Mean):
        rows = train_rows if train_rows is not None else slice(None)
        train_mean = scaled[rows, :V].mean(axis=0)
        core.set_train_mean(torch.from_numpy(np.ascontiguousarray(train_mean)))
    model.to(device)
    tensor = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32)).to(device)
    result = train(
        model,
        tensor,
        train_starts,
        val_starts,
        config,
        n_targets=V,
        callbacks=callbacks,
        layout=layout,
        checkpoint=checkpoint,
    )
    members = check_members(model, tensor, val_starts, config, layout)
    return FittedModel(model, result, train_starts, val_starts, tensor, members)


MEMBER_BLOW_UP = 3.0  # a member whose validation MSE is this many times the median's is dropped


def member_forecasts(
    model: nn.Module, tensor: torch.Tensor, starts: np.ndarray, config: RunConfig, layout: Layout
) -> np.ndarray | None:
    """Every ensemble member's forecasts of these windows, (N, H, V, K) float64 (scaled); None
    for a single model."""
    L, H = config.lookback_rows, config.horizon
    predicted = member_outputs(model, tensor, starts, L, layout, H)
    return None if predicted is None else predicted.astype(np.float64)


def check_members(
    model: nn.Module,
    tensor: torch.Tensor,
    val_starts: np.ndarray,
    config: RunConfig,
    layout: Layout,
) -> dict[str, Any] | None:
    """For an ensemble: each member's validation MSE (scaled), and the members dropped from
    its mean because theirs is not finite or over MEMBER_BLOW_UP x the median member's. None
    for a single model."""
    core = models.ensemble_of(model)
    if core is None:
        return None
    K = int(core.keep.numel())
    if len(val_starts) == 0:
        return {"members": K, "val_mse": None, "dropped": []}
    predicted = member_forecasts(model, tensor, val_starts, config, layout)
    if predicted is None:
        return None
    L, H = config.lookback_rows, config.horizon
    actual = gather_targets(
        tensor, torch.as_tensor(val_starts, device=tensor.device), L, H, layout.n_targets
    )
    errors = predicted - actual.cpu().numpy()[..., None]  # (N, H, V, K)
    mse = np.mean(errors**2, axis=(0, 1, 2))  # (K,)
    finite = np.isfinite(mse)
    median = float(np.median(mse[finite])) if finite.any() else float("nan")
    dropped = [k for k in range(K) if not finite[k] or mse[k] > MEMBER_BLOW_UP * median]
    if len(dropped) < K:  # never all of them: a model that blew up as a whole is reported so
        with torch.no_grad():
            for k in dropped:
                core.keep[k] = 0.0
    return {"members": K, "val_mse": [float(v) for v in mse], "dropped": dropped}


@dataclass
class TrainingData:
    """What one training run reads besides the model's options: the scaler, the series the
    loop trains on with the (train, val) window starts into it, the rows the `mean` model
    reads, and the training rows' one-step naive MAE (scaled, original) and share of up
    moves."""

    scaler: PanelScaler
    series: np.ndarray
    starts: tuple[np.ndarray, np.ndarray]
    train_rows: np.ndarray | slice | None
    naive_mae_scaled: np.ndarray
    naive_mae_original: np.ndarray
    up_fraction: np.ndarray


@dataclass
class FittedState:
    """Everything `Forecaster.fit` learns. Model files hold exactly these fields (weights in
    safetensors, the rest in JSON) and `load` restores every one of them.

    A wide table is the panel of one series: `scaler` then has one row and `split` one
    `Split`."""

    model: nn.Module
    scaler: PanelScaler
    targets: list[str]
    covariates: list[str]
    time_col: str | None
    freq: str | None
    split: PanelSplit
    naive_mae_scaled: np.ndarray  # (V,) one-step MAE of the train rows, for MASE
    naive_mae_original: np.ndarray
    training: TrainResult
    n_train_windows: int
    data_sha256: str
    calibration: Calibration | None = None  # prediction intervals (None: point forecasts)
    inputs: Inputs = field(default_factory=lambda: Inputs(ids=("",)))
    levels: transform.LevelState | None = None  # with a target transform: the level side
    up_fraction: np.ndarray | None = None  # (V,) share of up moves of the train levels
    baselines: BaselineState | None = None  # the mean and seasonal_naive baselines' fit

    @property
    def layout(self) -> Layout:
        return self.inputs.layout(len(self.targets), len(self.covariates))
