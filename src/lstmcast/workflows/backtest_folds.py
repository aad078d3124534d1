"""A backtest's plan and its folds: which origins each fold forecasts, and the rows each
series trains on (see `lstmcast.workflows.backtesting`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstmcast import choices
from lstmcast.checks import check_choice, check_int
from lstmcast.config import RunConfig
from lstmcast.data import Split
from lstmcast.data.calendar import time_text
from lstmcast.data.panel import Panel, PanelSplit, window_series
from lstmcast.data.split import _boundary
from lstmcast.errors import ConfigError, DataError

WINDOWS = choices.values(choices.Window)


@dataclass(frozen=True)
class Plan:
    """How a backtest walks through time (see the module docstring)."""

    folds: int = 5
    origin_step: int = 1
    refit: str = "every"  # every | never | K (an int as text or number: every K folds)
    window: str = "expanding"
    train_rows: int | None = None  # sliding: rows per training window
    gap: int = 0  # embargo rows between the last training row and the first forecast

    def __post_init__(self) -> None:
        object.__setattr__(self, "folds", check_int("folds", self.folds))
        object.__setattr__(self, "origin_step", check_int("origin_step", self.origin_step))
        object.__setattr__(self, "gap", check_int("gap", self.gap, minimum=0))
        check_choice("window", self.window, WINDOWS)
        object.__setattr__(self, "window", str(self.window))
        refit = str(self.refit).strip().lower()
        if refit not in ("every", "never") and not (refit.isdigit() and int(refit) >= 1):
            raise ConfigError(
                f"The 'refit' option takes every, never or a number of folds K >= 1 (refit "
                f"every K folds). Got {self.refit!r} instead."
            )
        object.__setattr__(self, "refit", refit)
        if self.window == "sliding":
            if self.train_rows is None:
                raise ConfigError("--window sliding needs --train-rows (rows per training window)")
            object.__setattr__(self, "train_rows", check_int("train_rows", self.train_rows))
        elif self.train_rows is not None:
            raise ConfigError("--train-rows sizes a sliding window; add --window sliding")

    def trains(self, fold: int) -> bool:
        """Whether fold `fold` (0-based) trains its own model."""
        if self.refit == "every" or fold == 0:
            return True
        if self.refit == "never":
            return False
        return fold % int(self.refit) == 0


Window = tuple[int, int, int]  # one series' training rows: local (start, end, n_val)


@dataclass(frozen=True)
class Fold:
    """Fold `index`: forecast `origins` (stacked rows, the last observed row of each window)
    with a model trained, in series i, on its local rows [start, end) of windows[i] (the last
    n_val of them validate; None: series i has too few rows to train here). A fold forecasts
    the series that the fold which trained its model trained on."""

    index: int
    origins: np.ndarray
    windows: tuple[Window | None, ...]

    @property
    def train_start(self) -> int:  # of a one-series fold, as in its report
        return self._only()[0]

    @property
    def train_end(self) -> int:
        return self._only()[1]

    @property
    def n_val(self) -> int:
        return self._only()[2]

    def _only(self) -> Window:
        window = self.windows[0]
        if len(self.windows) != 1 or window is None:
            raise ConfigError("internal: the train rows of a fold of many series are per series")
        return window

    def split(self) -> PanelSplit:
        """The record of the rows the fold's model saw: in each series everything before its
        training window ends (the last n_val rows validating)."""
        return PanelSplit(
            tuple(
                None if w is None else Split((0, w[1] - w[2]), (w[1] - w[2], w[1]), (w[1],) * 2)
                for w in self.windows
            )
        )

    def train_rows(self, bounds: np.ndarray) -> list[tuple[int, slice]]:
        """(series, its stacked training rows) of every series in the fold (`bounds`: the
        panel's)."""
        return [
            (i, slice(int(bounds[i]) + w[0], int(bounds[i]) + w[1] - w[2]))
            for i, w in enumerate(self.windows)
            if w is not None
        ]


def _train_window(end: int, config: RunConfig, plan: Plan) -> tuple[Window, int, bool]:
    """The training window of a series whose rows before `end` may train (the origin row
    included, the gap taken off already): ((start, end, n_val), the rows a training and a
    validation window need, whether it holds them)."""
    L, H = config.lookback_rows, config.horizon
    start = max(0, end - plan.train_rows) if plan.train_rows is not None else 0
    n = end - start
    n_val = math.floor(n * config.val_fraction + 1e-9) if config.val_fraction else 0
    need_rows = L + H + (H if n_val else 0)
    fits = n - n_val >= L + H and (not n_val or n_val >= H)
    if plan.train_rows is not None and plan.train_rows < need_rows:
        raise ConfigError(
            f"--train-rows {plan.train_rows} is shorter than lookback {L} + horizon {H}"
            f"{' + a validation block' if n_val else ''}; use --train-rows {need_rows} or more"
        )
    return (start, end, n_val), need_rows, fits


def _too_few_origins(plan: Plan, n: int, where: str) -> ConfigError:
    return ConfigError(
        f"--folds {plan.folds} needs at least {plan.folds} forecast origins, but {where} has "
        f"{n}; use --folds {max(n, 1)} or less"
    )


def make_folds(n_rows: int, test_start: int, config: RunConfig, plan: Plan) -> list[Fold]:
    """The folds of a series of `n_rows` rows whose first forecast target is row `test_start`;
    ConfigError names the option and its limit when the data cannot hold them."""
    L, H = config.lookback_rows, config.horizon
    first_origin = max(test_start - 1, L - 1)
    origins = np.arange(first_origin, n_rows - H, plan.origin_step, dtype=np.int64)
    if len(origins) < plan.folds:
        where = (
            f"the test span (rows {first_origin + 2} to {n_rows}, horizon {H}, --origin-step "
            f"{plan.origin_step})"
        )
        raise _too_few_origins(plan, len(origins), where)
    folds = []
    for k, block in enumerate(np.array_split(origins, plan.folds)):
        # the origin row itself is observed at forecast time
        window, need_rows, fits = _train_window(int(block[0]) - plan.gap + 1, config, plan)
        if not fits:
            raise ConfigError(
                f"fold {k + 1} would train on {window[1] - window[0]} rows (before its first "
                f"origin, row {int(block[0]) + 1}, less --gap {plan.gap}); lookback {L} + "
                f"horizon {H} needs {need_rows}: use fewer --folds, a smaller --gap or a "
                f"smaller --test-fraction"
            )
        folds.append(Fold(k, block, (window,)))
    return folds


def make_panel_folds(panel: Panel, config: RunConfig, plan: Plan) -> list[Fold]:
    """The folds of a panel of many series, cut by time so that no series trains on a time
    another series forecasts: every series' origins (from its own test start, as
    `panel_splits` cuts it, every `origin_step` rows) pooled, their timestamps cut into
    `folds` blocks; in fold k each series trains on its rows up to the block's first time
    (less `gap` rows). A series whose window is too short is left out of that fold and of the
    folds that reuse its model (the report counts each fold's series); ConfigError when a
    fold has none."""
    if panel.time is None:
        raise DataError("a backtest of many series (--id-col) needs a time column")
    L, H = config.lookback_rows, config.horizon
    test_at = (
        _boundary("test_start", config.test_start, panel.time)
        if config.test_start is not None
        else None
    )
    per_series_times = [panel.time[panel.rows(i)] for i in range(panel.n_series)]
    rows, times = [], []
    for i, time in enumerate(per_series_times):
        n = len(time)
        first_target = (
            int(time.searchsorted(test_at))
            if test_at is not None
            else n - math.floor(n * config.test_fraction + 1e-9)
        )
        local = np.arange(max(first_target - 1, L - 1), n - H, plan.origin_step, dtype=np.int64)
        rows.append(int(panel.bounds[i]) + local)
        times.append(time.asi8[local])
    stacked, stamps = np.concatenate(rows), np.concatenate(times)
    unique = np.unique(stamps)
    if len(unique) < plan.folds:
        raise _too_few_origins(plan, len(unique), "the test span (distinct origin times)")
    blocks = np.array_split(unique, plan.folds)
    windows: list[tuple[Window | None, ...]] = []
    for block in blocks:
        per_series: list[Window | None] = []
        for time in per_series_times:
            end = int(np.searchsorted(time.asi8, block[0], side="right")) - plan.gap
            window, _, fits = _train_window(end, config, plan)
            per_series.append(window if fits else None)
        windows.append(tuple(per_series))
    series = window_series(panel.bounds, stacked)
    folds = []
    for k, block in enumerate(blocks):
        source = max(j for j in range(k + 1) if plan.trains(j))  # the fold whose model it uses
        kept = np.array([w is not None for w in windows[source]])  # the series it can scale
        if not kept.any():
            raise ConfigError(
                f"fold {source + 1}: no series has lookback {L} + horizon {H} of rows before "
                f"{time_text(block[0])} (less --gap {plan.gap}); use fewer --folds, a "
                f"smaller --gap or a smaller --test-fraction"
            )
        take = (stamps >= block[0]) & (stamps <= block[-1]) & kept[series]
        order = np.lexsort((series[take], stamps[take]))  # time order, then series
        folds.append(Fold(k, stacked[take][order], windows[k]))
    return folds
