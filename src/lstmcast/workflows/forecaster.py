"""`Forecaster`: the scikit-learn-style front door. It composes the layers below: read and
validate the table once, split it in time order, scale on train, fit (`fitting.fit_model`),
forecast every window of a split, predict; `save`/`load` go through `modelfile`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lstmcast import models
from lstmcast.config import DEFAULT_MODEL, RunConfig, make_config
from lstmcast.data import Scaler, Split, window_starts
from lstmcast.data.calendar import dates_only, time_text
from lstmcast.data.load import read_table_digest
from lstmcast.data.mapped import MappedTable
from lstmcast.data.panel import (
    Panel,
    PanelScaler,
    PanelSplit,
    fit_panel_scaler,
    panel_starts,
)
from lstmcast.data.panel import window_series as panel_window_series
from lstmcast.data.transform import LevelState, rebuild, resolve
from lstmcast.engine.checkpoint import Checkpoint
from lstmcast.engine.training import Callback, TrainResult, resolve_device
from lstmcast.errors import ConfigError, DataError, NotFittedError
from lstmcast.evaluation.backtest import (
    Backtest,
    forecast_frame,
    in_levels,
    level_name,
    make_backtest,
    per_series_report,
    report,
)
from lstmcast.evaluation.baselines import BaselineState, baseline_forecasts, fit_baselines
from lstmcast.evaluation.market import market_report, up_fraction
from lstmcast.evaluation.metrics import pooled_naive_mae
from lstmcast.workflows import defaults, mapped, modelfile
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
    MEMBER_BLOW_UP,
    Columns,
    DataLike,
    Dataset,
    FittedState,
    fingerprint,
    fit_model,
    make_inputs,
    member_forecasts,
    read_dataset,
    split_panel,
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
        self,
        model: str = DEFAULT_MODEL,
        *,
        lookback: int | None = None,
        horizon: int = 1,
        **options: Any,
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
    def fit(
        self,
        data: DataLike | Dataset | MappedTable,
        *,
        callbacks: Sequence[Callback] = (),
        checkpoint: str | Path | None = None,
        resume: bool | None = False,
    ) -> Forecaster:
        """Validate `data`, split each series in time order, scale each series on its own
        train rows, train one model on the train windows of every series with early stopping
        on the validation windows. `callbacks` see every epoch (see
        `lstmcast.engine.training.Epoch`). With `checkpoint` (a directory), training saves
        its whole state there after every epoch; `resume=True` goes on from it (a killed
        run loses at most one epoch, and on the CPU ends as an uninterrupted one), None goes
        on from it only when it is this run's. Options left to the data (the lookback; the
        width and dropout of lstm and seglstm; see `lstmcast.workflows.defaults`) are chosen
        first and kept in `config`; `derived_` lists them with the reasons. With the option
        `memmap` (or a `MappedTable`), a CSV or Parquet file's values stay in a memory-mapped
        file (see `lstmcast.workflows.mapped`). Returns self."""
        if self.config.memmap or isinstance(data, MappedTable):
            table = mapped.map_for(self.config, data)
            learned = mapped.fit(self.config, table, callbacks, checkpoint, resume)
            self.config, self.device_ = learned.config, learned.device
            self.derived_, self.members_, self.state_ = (
                learned.chosen,
                learned.members,
                learned.state,
            )
            return self
        dataset = read_dataset(data, Columns.of(self.config))
        panel = dataset.panel
        # the options left to the data are chosen here, once, and kept in the config
        self.config, chosen = defaults.resolve(self.config, panel)
        cfg = self.config
        device = resolve_device(cfg.device)
        if cfg.adaptive_gamma and panel.n_series > 1:
            raise ConfigError(
                f"The 'adaptive_gamma' option follows one series' recent misses; "
                f"{dataset.source} has {panel.n_series} series. Use --adaptive-gamma 0."
            )
        split = split_panel(panel, cfg)
        scaler = fit_panel_scaler(panel, split, cfg.scaler)
        inputs = make_inputs(panel, cfg, split)
        layout = inputs.layout(panel.n_targets, len(panel.covariates))
        series_of_rows = panel.series_of_rows()
        scaled = inputs.design(panel.values, series_of_rows, panel.time, scaler)
        L, H, V = cfg.lookback_rows, cfg.horizon, panel.n_targets
        windows = (
            panel_starts(panel.bounds, split, "train", L, H, cfg.stride),
            panel_starts(panel.bounds, split, "val", L, H),
        )
        train_rows = _train_rows(panel, split)
        fitted = fit_model(
            scaled,
            layout,
            windows,
            cfg,
            device,
            callbacks,
            covariates=inputs.spec(H, layout),
            train_rows=train_rows,
            checkpoint=None
            if checkpoint is None
            else Checkpoint(Path(checkpoint), fingerprint(cfg, dataset.sha256), resume),
        )
        calibration = calibrate(
            fitted.model, fitted.series, scaled, fitted.val_starts, V, cfg, layout
        )
        self.device_ = device
        self.derived_ = chosen
        self.members_ = fitted.members  # an ensemble's members on validation (else None)
        self.state_ = FittedState(
            model=fitted.model,
            scaler=scaler,
            targets=list(panel.targets),
            covariates=list(panel.covariates),
            time_col=panel.time_col,
            freq=panel.freq,
            split=split,
            naive_mae_scaled=_naive_mae(scaled, panel, split, V),
            naive_mae_original=_naive_mae(panel.values, panel, split, V),
            training=fitted.training,
            n_train_windows=len(fitted.train_starts),
            data_sha256=dataset.sha256,
            calibration=calibration,
            inputs=inputs,
            levels=_fit_levels(panel, split, cfg),
            up_fraction=_up_fraction(panel.target_levels, panel, split, V),
            baselines=_fit_baselines(panel, split, cfg),
        )
        return self

    # Read-only views of the fitted state, for convenience.
    @property
    def model_(self) -> nn.Module:
        return self._state().model

    @property
    def scaler_(self) -> Scaler | PanelScaler:
        """The scaler (one per series: a `PanelScaler` for a long table)."""
        scaler = self._state().scaler
        if scaler.center.shape[0] == 1:
            return Scaler(scaler.kind, scaler.center[0], scaler.scale[0])
        return scaler

    @property
    def split_(self) -> Split | PanelSplit:
        """The train/val/test rows (one `Split` per series: a `PanelSplit` for a long table)."""
        split = self._state().split
        if len(split.splits) == 1 and split.splits[0] is not None:
            return split.splits[0]
        return split

    @property
    def targets_(self) -> list[str]:
        return self._state().targets

    @property
    def training_(self) -> TrainResult:
        return self._state().training

    @property
    def skipped_(self) -> tuple[tuple[str, str], ...]:
        """The series too short for a split: (id, why), not trained on or evaluated."""
        return self._state().split.skipped

    # ------------------------------------------------------------- evaluate
    def backtest(
        self,
        data: DataLike | Dataset | MappedTable,
        split: str = "test",
        intervals: Sequence[float] | None = None,
    ) -> tuple[Backtest, Panel]:
        """Forecasts for every window of the `split` ("train", "val", "test" or "all") of every
        series of `data`, with the prediction intervals at `intervals` (default: the levels it
        was trained for; () for none). A `MappedTable` is read in batches from its mapping
        (every `stride`-th window; see `lstmcast.workflows.mapped`)."""
        state = self._state()
        levels = self._levels(intervals)
        L, H = self.config.lookback_rows, self.config.horizon
        if isinstance(data, MappedTable):
            panel, starts, scaled = mapped.windows(data, state, self.config, split)
            window_series = np.zeros(len(starts), dtype=np.int64)
            return self._forecast_windows(panel, scaled, starts, window_series, levels, data.source)
        dataset = self.read(data)
        panel = dataset.panel
        if split not in SPLITS:
            raise DataError(f"unknown split '{split}'; allowed: {', '.join(SPLITS)}")
        model_ids = state.inputs.index_of(panel.ids, dataset.source)
        if split == "all":
            pieces = [
                int(panel.bounds[i]) + window_starts(0, 0, int(n), L, H)
                for i, n in enumerate(panel.lengths())
            ]
            starts = np.concatenate(pieces)
        else:
            parts = state.split if self._same_table(dataset) else split_panel(panel, self.config)
            starts = panel_starts(panel.bounds, parts, split, L, H)
        if len(starts) == 0:
            raise DataError(
                f"the {split} split of {dataset.source} has no complete window "
                f"(lookback {L} + horizon {H}); use more data"
            )
        row_series = model_ids[panel.series_of_rows()]
        scaled = state.inputs.design(panel.values, row_series, panel.time, state.scaler)
        return self._forecast_windows(
            panel, scaled, starts, row_series[starts], levels, dataset.source
        )

    def _forecast_windows(
        self,
        panel: Panel,
        scaled: np.ndarray,
        starts: np.ndarray,
        window_series: np.ndarray,
        levels: tuple[float, ...],
        source: str,
    ) -> tuple[Backtest, Panel]:
        """The `Backtest` of the windows `starts` of `scaled` (the series tensor's rows, (T, W),
        in memory or mapped: only the windows' rows are read), each of the model's series
        `window_series`."""
        state = self._state()
        L, H, V = self.config.lookback_rows, self.config.horizon, len(state.targets)
        tensor = self._on_device(scaled)
        outputs = self._outputs(tensor, starts, levels)
        rows = np.unique(starts[:, None] + np.arange(L))  # each window's inputs, contiguous
        far = _check_outputs(
            outputs.point,
            np.asarray(scaled[rows, : layout_inputs(state)]),
            np.searchsorted(rows, starts),
            L,
            lambda i: _label(panel, int(starts[i]) + L - 1),
            source,
            self._blow_up_hint(),
        )
        bands = None
        if levels:
            last = scaled[starts + L - 1, :V].astype(np.float64)
            actual = scaled[starts[:, None] + L + np.arange(H), :V].astype(np.float64)
            bands = make_bands(
                need(state.calibration, "levels"), levels, outputs, last, actual=actual
            )
        result = make_backtest(
            scaled,
            state.scaler.params(window_series, V, np.float64),
            window_series,
            state.inputs.ids,
            starts,
            L,
            H,
            V,
            outputs.point,
            bands=bands,
            quantiles_scaled=outputs.quantiles,
            taus=self.config.head_quantiles() if outputs.quantiles is not None else (),
            series_start=panel.bounds[panel_window_series(panel.bounds, starts)],
        )
        if state.levels is not None and panel.levels is not None:
            unscale = state.levels.scaler.params(window_series, V, np.float64)
            result = in_levels(result, panel.levels, state.levels.kinds, unscale)
        baselines = {}
        if state.baselines is not None:  # in original units, then scaled like the rest
            raw = baseline_forecasts(
                state.baselines, panel.target_levels, window_series, starts, L, H
            )
            center, scale = result.center[:, None, :V], result.scale[:, None, :V]
            baselines = {name: (a - center) / scale for name, a in raw.items()}
        members = self._members(tensor, scaled, starts, outputs.members)
        return dataclasses.replace(result, far=far, baselines=baselines, members=members), panel

    def report(self, forecasts: Backtest, split: str = "test") -> dict[str, Any]:
        """Metrics of the model and of repeat_last on `forecasts`, scaled and in original
        units, overall, per variable and per horizon step, with the skill score; for many
        series also per series, each beside that series' repeat_last."""
        state = self._state()
        naive_scaled, naive_original = state.naive_mae_scaled, state.naive_mae_original
        if state.levels is not None and forecasts.transformed is not None:
            naive_scaled = state.levels.naive_mae_scaled
            naive_original = state.levels.naive_mae_original
        metrics = report(forecasts, state.targets, self.config.model, naive_scaled, naive_original)
        if "intervals" in metrics and state.calibration is not None:
            metrics["intervals"]["method"] = state.calibration.method
            metrics["intervals"]["calibration_windows"] = state.calibration.n_windows
        result = {
            "split": split,
            "lookback": self.config.lookback,
            "horizon": self.config.horizon,
            **metrics,
        }
        if forecasts.far:
            result["far_from_training"] = forecasts.far
        if forecasts.members is not None:
            validation = getattr(self, "members_", None) or {}
            result["ensemble"] = {
                **forecasts.members,
                "val_mse_scaled": validation.get("val_mse"),
                "dropped_on_validation": validation.get("dropped", []),
            }
        if forecasts.transformed is not None and state.levels is not None:
            transformed = report(
                forecasts.transformed,
                state.targets,
                self.config.model,
                state.naive_mae_scaled,
                state.naive_mae_original,
            )
            transformed.pop("intervals", None)
            result["transform"] = dict(zip(state.targets, state.levels.kinds, strict=True))
            result["transformed"] = transformed
        if self.config.wants_market:
            result["market"] = self._market(forecasts)
        if state.inputs.id_col is not None:
            result["n_series"] = len(np.unique(forecasts.series))
            result["skipped_series"] = [
                {"id": name, "reason": why} for name, why in state.split.skipped
            ]
            result["per_series"] = per_series_report(
                forecasts,
                state.targets,
                self.config.model,
                naive_scaled,
                naive_original,
            )
        return result

    def _market(self, forecasts: Backtest) -> dict[str, Any]:
        """Return hit rates, Theil's U2 and the long/short illustration, in levels."""
        state = self._state()
        report = market_report(
            forecasts.original(forecasts.actual_scaled),
            forecasts.original(forecasts.predicted_scaled),
            forecasts.original(forecasts.last_scaled),
            forecasts.series,
            forecasts.starts,
            state.targets,
            up_fraction=state.up_fraction,
            cost_bps=self.config.cost_bps,
            freq=state.freq,
        )
        for block in report["trading"]["per_variable"].values():  # series by id, not index
            if "per_series" in block:
                block["per_series"] = {
                    forecasts.ids[int(k)]: v for k, v in block["per_series"].items()
                }
        return report

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
        (and lower_/upper_ columns per interval level; a first id column for a long table)."""
        result, panel = self.backtest(data, split, intervals)
        return forecast_frame(result, self.targets_, panel.time, self._state().inputs.id_col)

    # -------------------------------------------------------------- predict
    def predict(
        self,
        data: DataLike | Dataset,
        intervals: Sequence[float] | None = None,
        *,
        future: DataLike | None = None,
        ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The `horizon` steps after the last observed row of each series of `data`, in
        original units. A wide table gives one row per step, indexed by the timestamps that
        continue its frequency (or by row number without a time column); a long table one row
        per (id, step), with the id and time as the first columns (`ids`: only these series).
        With intervals (default: the levels it was trained for), columns `<target>_lower_80`
        and `<target>_upper_80` per level follow the point forecasts.

        A model with known-future covariates reads their values over the horizon from the
        rows after each series' last observed target (targets left empty) or from `future`
        (a table with the time column, the id column for a long table, and those columns);
        DataError names the first column and timestamp without a value."""
        state = self._state()
        levels = self._levels(intervals)
        dataset = self.read(data, future_rows=bool(state.inputs.future_covariates))
        panel = dataset.panel
        cfg = self.config
        L, H, V = cfg.lookback_rows, cfg.horizon, len(state.targets)
        chosen = list(range(panel.n_series))
        if ids is not None:
            where = {name: i for i, name in enumerate(panel.ids)}
            missing = [name for name in ids if name not in where]
            if missing:
                raise DataError(
                    f"{dataset.source} has no series '{missing[0]}' (--ids); it has "
                    f"{', '.join(panel.ids[:5])}{', ...' if panel.n_series > 5 else ''}"
                )
            chosen = [where[name] for name in ids]
        model_ids = state.inputs.index_of([panel.ids[i] for i in chosen], dataset.source)
        known = self._future_values(dataset, future)
        blocks, times, stamps = [], [], []
        irregular: str | None = None  # set: the steps are numbered, not dated
        holidays: str | None = None
        for i in chosen:
            rows = panel.rows(i)
            n = rows.stop - rows.start
            if n < L:
                name = f"series '{panel.ids[i]}' of " if panel.id_col else ""
                raise DataError(
                    f"{name}{dataset.source} has {n} rows but lookback {L} needs at least {L}"
                )
            one = panel.series(i)
            index = one.future_index(H, cfg.exchange)
            irregular = irregular or one.irregular_note
            holidays = holidays or one.holidays_note(cfg.exchange)
            ahead = np.zeros((H, panel.values.shape[1]), dtype=np.float32)
            if state.inputs.future_covariates:
                ahead[:, V + len(state.covariates) :] = self._lookup_future(
                    known, panel.ids[i], index, dataset.source
                )
            blocks.append(np.concatenate([panel.values[rows.stop - L : rows.stop], ahead]))
            if panel.time is not None:
                times.append(panel.time[rows.stop - L : rows.stop].append(pd.DatetimeIndex(index)))
            stamps.append(index)
        values = np.concatenate(blocks)
        time = _concat_times(times) if times else None
        row_series = np.repeat(model_ids, L + H)
        scaled = state.inputs.design(values, row_series, time, state.scaler)
        tensor = self._on_device(scaled)
        starts = np.arange(len(chosen), dtype=np.int64) * (L + H)
        outputs = self._outputs(tensor, starts, levels)
        self._check_frequency(panel, dataset.source)
        far = _check_outputs(
            outputs.point,
            scaled[:, : layout_inputs(state)],
            starts,
            L,
            lambda k: f"series '{panel.ids[chosen[k]]}'" if panel.id_col else "the last rows",
            dataset.source,
            self._blow_up_hint(),
        )
        center, scale = state.scaler.params(model_ids, V, np.float64)
        point = outputs.point * scale[:, None, :] + center[:, None, :]  # (S, H, V)
        level_state, last_level = state.levels, None
        if level_state is not None and panel.levels is not None:  # from the last level
            last_level = panel.levels[[int(panel.bounds[i + 1]) - 1 for i in chosen]]
            point = rebuild(point, last_level, level_state.kinds)
        columns: dict[str, np.ndarray] = {
            target: point[:, :, v].ravel() for v, target in enumerate(state.targets)
        }
        if levels:
            last = scaled[starts + L - 1, :V].astype(np.float64)
            alpha_end = self._adaptive_state(panel, levels)
            bands = make_bands(
                need(state.calibration, "levels"), levels, outputs, last, alpha_end=alpha_end
            )
            for k, level in enumerate(levels):
                lower = bands.lower[..., k] * scale[:, None, :] + center[:, None, :]
                upper = bands.upper[..., k] * scale[:, None, :] + center[:, None, :]
                if level_state is not None and last_level is not None:  # per step: monotone
                    lower = rebuild(lower, last_level, level_state.kinds)
                    upper = rebuild(upper, last_level, level_state.kinds)
                    lower, upper = np.minimum(lower, upper), np.maximum(lower, upper)
                for v, target in enumerate(state.targets):
                    columns[f"{target}_lower_{level_name(level)}"] = lower[:, :, v].ravel()
                    columns[f"{target}_upper_{level_name(level)}"] = upper[:, :, v].ravel()
        frame = pd.DataFrame(columns)
        label = panel.time_col if panel.time_col and irregular is None else "step"
        notes = [n for n in (irregular, holidays, far.get("note")) if n]
        if notes:
            frame.attrs["note"] = " ".join(notes)  # the CLI prints it
        if panel.id_col is None:
            frame.index = pd.Index(stamps[0], name=label)
            return frame
        frame.insert(0, label, np.concatenate([np.asarray(t) for t in stamps]))
        frame.insert(0, panel.id_col, np.repeat([panel.ids[i] for i in chosen], H))
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

    def _same_table(self, dataset: Dataset) -> bool:
        """Whether `dataset` is the table `fit` read (then its splits are the stored ones)."""
        state, panel = self._state(), dataset.panel
        if dataset.sha256 != state.data_sha256 or panel.ids != state.inputs.ids:
            return False
        return all(
            s is None or s.test[1] == n
            for s, n in zip(state.split.splits, panel.lengths(), strict=True)
        )

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

    def _blow_up_hint(self) -> str:
        """Advice for forecasts far out: relu LSTMs (the reference presets) are unbounded."""
        relu = self.config.activation == "relu" or (
            self.config.activation is None
            and self.config.model in ("simple", "stacked", "bidirectional")
        )
        return " (a relu LSTM is unbounded there: --activation tanh bounds it)" if relu else ""

    def _check_frequency(self, panel: Panel, source: str) -> None:
        """DataError when `panel` runs at another frequency than the training data."""
        trained = self._state().freq
        if trained and panel.freq and panel.freq != trained:
            raise DataError(
                f"{source} has frequency '{panel.freq}', but the model was trained on "
                f"'{trained}' data; its lookback of {self.config.lookback} rows would span "
                f"another length of time. Resample the data to '{trained}'"
            )

    def _macro_columns(self) -> tuple[str, ...]:
        """The past covariates that come from the --macro table (the last ones), not DATA."""
        if self.config.macro is None:
            return ()
        return tuple(self._state().covariates[len(self.config.covariates) :])

    def _future_values(self, dataset: Dataset, future: DataLike | None) -> pd.DataFrame | None:
        """The known-future covariates' values after the observed rows: the table's trailing
        rows and the `future` table, indexed by (id, time)."""
        names = list(self._state().inputs.future_covariates)
        if not names:
            return None
        panel = dataset.panel
        frames = [dataset.future] if dataset.future is not None else []
        if future is not None:
            frames.append(read_table_digest(future)[0])
        keys = [panel.id_col] if panel.id_col else []
        keys += [panel.time_col] if panel.time_col else []
        if panel.time_col is None:
            raise DataError(
                "known-future covariates need a time column to match their future values"
            )
        rows = []
        for frame in frames:
            absent = [c for c in [*keys, *names] if c not in frame.columns]
            if absent and len(frame):
                raise DataError(
                    f"the future values lack column '{absent[0]}'; they need "
                    f"{', '.join([*keys, *names])}"
                )
            if len(frame):
                rows.append(frame[[*keys, *names]])
        if not rows:
            return pd.DataFrame(columns=[*keys, *names]).set_index(keys)
        table = pd.concat(rows, ignore_index=True)
        table[panel.time_col] = pd.to_datetime(table[panel.time_col], format="mixed")
        if panel.id_col:
            table[panel.id_col] = table[panel.id_col].astype(str)
        for name in names:
            table[name] = pd.to_numeric(table[name], errors="coerce")
        return table.drop_duplicates(subset=keys, keep="last").set_index(keys)

    def _lookup_future(
        self, known: pd.DataFrame | None, series_id: str, index: Any, source: str
    ) -> np.ndarray:
        """(H, C) values of the known-future covariates of one series at its future `index`."""
        names = list(self._state().inputs.future_covariates)
        has_id = self._state().inputs.id_col is not None
        out = np.full((len(index), len(names)), np.nan)
        if known is not None and len(known):
            keys = [(series_id, t) for t in index] if has_id else list(index)
            found = known.reindex(pd.MultiIndex.from_tuples(keys) if has_id else keys)
            out = found[names].to_numpy(dtype=np.float64)
        gaps = np.argwhere(~np.isfinite(out))
        if len(gaps):
            step, col = gaps[0]
            who = f" of series '{series_id}'" if has_id else ""
            raise DataError(
                f"{source}: no value of known-future covariate '{names[col]}'{who} at "
                f"{index[step]}; predict needs it at every forecast step (add rows after the "
                f"last observed target with the targets left empty, or pass --future FILE)"
            )
        return out

    def _adaptive_state(
        self, panel: Panel, levels: tuple[float, ...]
    ) -> dict[float, np.ndarray] | None:
        """Adaptive conformal's rates after every window of the (one) series whose targets lie
        after the validation split (None when the intervals are not adaptive)."""
        state = self._state()
        calibration = state.calibration
        if calibration is None or not calibration.gamma:
            return None
        L, H, V = self.config.lookback_rows, self.config.horizon, len(state.targets)
        n = len(panel)
        starts = window_starts(0, min(calibration.calibration_end, n), n, L, H)
        rates = {}
        if len(starts) == 0:  # nothing after validation yet: the nominal rates
            shape = (H, V)
            return {level: np.full(shape, 1 - level) for level in levels}
        scaled = state.inputs.design(
            panel.values, np.zeros(n, dtype=np.int64), panel.time, state.scaler
        )
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

    def _members(
        self,
        series: torch.Tensor,
        scaled: np.ndarray,
        starts: np.ndarray,
        predicted: np.ndarray | None = None,
    ) -> dict[str, Any] | None:
        """An ensemble's members on these windows (trained space, scaled): each one's MSE, the
        mean spread between them, and the members far off the others (over
        MEMBER_BLOW_UP x the median member's MSE: noticed here, never dropped on these rows).
        `predicted`: the members' forecasts when the intervals already made them."""
        state = self._state()
        if predicted is None:
            predicted = member_forecasts(state.model, series, starts, self.config, state.layout)
        else:
            predicted = predicted.astype(np.float64)
        if predicted is None:
            return None
        L, H, V = self.config.lookback_rows, self.config.horizon, len(state.targets)
        actual = scaled[starts[:, None] + L + np.arange(H), :V].astype(np.float64)
        mse = np.mean((predicted - actual[..., None]) ** 2, axis=(0, 1, 2))
        median = float(np.median(mse))
        ensemble = models.ensemble_of(state.model)
        kept = (
            ensemble.keep.cpu().numpy() > 0
            if ensemble is not None
            else np.ones(predicted.shape[-1], dtype=bool)
        )
        return {
            "members": len(mse),
            "reduce": self.config.ensemble_reduce,  # how the kept members make the forecast
            "kept": [int(k) for k in np.flatnonzero(kept)],
            "mse_scaled": [float(v) for v in mse],
            "spread_scaled": float(np.mean(np.std(predicted[..., kept], axis=-1))),
            "far_off": [int(k) for k in range(len(mse)) if mse[k] > MEMBER_BLOW_UP * median],
        }

    def _outputs(
        self, series: torch.Tensor, starts: np.ndarray, levels: tuple[float, ...]
    ) -> Outputs:
        """The model's forecasts of these windows (mc-dropout's samples only when asked)."""
        state = self._state()
        calibration = state.calibration
        method = calibration.method if calibration is not None and levels else None
        return model_outputs(
            state.model,
            series,
            starts,
            self.config.lookback_rows,
            method,
            self.config.head_quantiles(),
            self.config.mc_samples,
            state.layout,
            self.config.horizon,
        )

    def read(self, data: DataLike | Dataset, future_rows: bool = False) -> Dataset:
        """`data` with the fitted model's columns (constant columns allowed: a flag may be flat
        over a short recent window; the scaler came from the training rows)."""
        state = self._state()
        inputs = state.inputs
        needed = [*state.targets, *state.covariates, *inputs.future_covariates]
        macro = self._macro_columns()
        if isinstance(data, Dataset):
            have = list(data.panel.columns)
            if have != needed:
                raise DataError(
                    f"{data.source} has columns {', '.join(have)}; the model was trained on "
                    f"{', '.join(needed)}"
                )
            return data
        own = tuple(c for c in state.covariates if c not in macro)  # the table's own columns
        columns = Columns(
            tuple(state.targets),
            own,
            state.time_col,
            self.config.fill,
            inputs.id_col,
            tuple(inputs.future_covariates),
            (),
            self.config.macro,
            self.config.release_lag,
            self.config.transform,
            self.config.duplicates,
        )
        needed = [c for c in needed if c not in macro]
        require = [*needed, *([inputs.id_col] if inputs.id_col else [])]
        return read_dataset(
            data, columns, allow_constant=True, require=require, future_rows=future_rows
        )


FAR = 10.0  # a scaled value this far from 0 lies ~10 training standard deviations out
_LABELS = 3  # windows named in a message


def layout_inputs(state: FittedState) -> int:
    """The columns the model reads as observed inputs (targets and past covariates)."""
    return len(state.targets) + len(state.covariates)


def _label(panel: Panel, row: int) -> str:
    """A stacked row, as a user finds it: the series and the timestamp (or row number)."""
    series = int(np.searchsorted(panel.bounds, row, side="right") - 1)
    who = f"series '{panel.ids[series]}' " if panel.id_col else ""
    if panel.time is not None:
        when = time_text(panel.time[row], dates_only(panel.time))
    else:
        when = f"row {row - panel.bounds[series] + 1}"
    return f"{who}{when}"


def _check_outputs(
    point: np.ndarray,
    inputs: np.ndarray,
    starts: np.ndarray,
    lookback: int,
    label_of: Callable[[int], str],
    source: str,
    hint: str = "",
) -> dict[str, Any]:
    """DataError for a forecast (N, H, V) that is not finite; a count (and a note naming the
    first windows) of the scaled observed `inputs` (T, C) and the forecasts far outside the
    training data's range."""
    bad = ~np.isfinite(point).all(axis=(1, 2))
    with np.errstate(invalid="ignore"):
        per_row = (~(np.abs(inputs) <= FAR)).sum(axis=1)  # NaN/inf count as far
    cumulative = np.concatenate([[0], np.cumsum(per_row)])
    per_window = cumulative[starts + lookback] - cumulative[starts]  # over each lookback
    far_inputs = int(per_row[np.unique(starts[:, None] + np.arange(lookback))].sum())
    if bad.any():
        first = [label_of(int(i)) for i in np.flatnonzero(bad)[:_LABELS]]
        cause = (
            f"{far_inputs} input values lie over {FAR:g} training standard deviations out"
            if far_inputs
            else "the inputs are in range, so the model file may be damaged"
        )
        raise DataError(
            f"{source}: the forecast of {int(bad.sum())} window(s) is not finite "
            f"(first: {', '.join(first)}); {cause}. Check the data's units "
            f"against the training data's"
        )
    far_out = (np.abs(point) > FAR).any(axis=(1, 2))
    far_windows = np.flatnonzero(far_out | (per_window > 0))
    if not far_inputs and not len(far_windows):
        return {}
    first = [label_of(int(i)) for i in far_windows[:_LABELS]]
    note = (
        f"{far_inputs} input value(s) and {int(far_out.sum())} forecast(s) lie over {FAR:g} "
        f"training standard deviations from the training data, in {len(far_windows)} "
        f"window(s)"
        + (f" (first: {', '.join(first)})" if first else "")
        + "; check the units, or retrain on data that covers this range"
        + (hint if far_out.any() else "")
    )
    return {
        "inputs": far_inputs,
        "forecasts": int(far_out.sum()),
        "windows": len(far_windows),
        "first": first,
        "note": note,
    }


def _concat_times(times: Sequence[pd.Index]) -> pd.DatetimeIndex:
    out: pd.Index = times[0]
    for t in times[1:]:
        out = out.append(t)
    return pd.DatetimeIndex(out)


def _train_rows(panel: Panel, split: PanelSplit) -> slice | np.ndarray:
    """The training rows of every kept series (a slice for one series)."""
    if panel.n_series == 1 and split.splits[0] is not None:
        return slice(*split.splits[0].train)
    mask = np.zeros(len(panel), dtype=bool)
    for i, s in enumerate(split.splits):
        if s is not None:
            start = int(panel.bounds[i])
            mask[start + s.train[0] : start + s.train[1]] = True
    return mask


def _train_pieces(values: np.ndarray, panel: Panel, split: PanelSplit, n_targets: int) -> list:
    """Each kept series' train rows of `values`, first `n_targets` columns."""
    return [
        values[int(panel.bounds[i]) + s.train[0] : int(panel.bounds[i]) + s.train[1], :n_targets]
        for i, s in enumerate(split.splits)
        if s is not None
    ]


def _naive_mae(values: np.ndarray, panel: Panel, split: PanelSplit, n_targets: int) -> np.ndarray:
    """The one-step naive MAE of the train rows (MASE's scale), pooled over the series, never
    differencing across a series boundary."""
    return pooled_naive_mae(_train_pieces(values, panel, split, n_targets))


def _fit_levels(panel: Panel, split: PanelSplit, config: RunConfig) -> LevelState | None:
    """A transformed run's level side: each series' scaler of its train levels, MASE's scale."""
    if panel.levels is None:
        return None
    V = panel.n_targets
    levels = dataclasses.replace(panel, values=panel.levels)
    scaler = fit_panel_scaler(levels, split, config.scaler)
    scaled = scaler.transform_rows(panel.levels, panel.series_of_rows())
    return LevelState(
        resolve(config.transform, panel.targets),
        scaler,
        _naive_mae(scaled, panel, split, V),
        _naive_mae(panel.levels, panel, split, V),
    )


def _fit_baselines(panel: Panel, split: PanelSplit, config: RunConfig) -> BaselineState:
    """Each series' mean over its train rows (levels under a transform) and the season the
    train rows show (see `lstmcast.evaluation.baselines`). A series too short for a split
    has no train rows and is never scored: its mean is over all its rows."""
    values = panel.target_levels
    pieces, short = [], []
    for i, s in enumerate(split.splits):
        start = int(panel.bounds[i])
        if s is None or s.train[1] <= s.train[0]:
            short.append(i)
        else:
            pieces.append((i, slice(start + s.train[0], start + s.train[1])))
    state = fit_baselines(
        values, pieces, panel.n_series, panel.freq, config.lookback_rows, config.period
    )
    for i in short:
        state.train_mean[i] = values[panel.rows(i)].mean(axis=0)
    return state


def _up_fraction(levels: np.ndarray, panel: Panel, split: PanelSplit, n_targets: int) -> np.ndarray:
    """(V,) the share of up moves among the moves of the train rows (the majority direction,
    decided on train), never across a series boundary."""
    return up_fraction(_train_pieces(levels, panel, split, n_targets))


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
