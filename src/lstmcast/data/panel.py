"""Many series in one table (long format: an id column, a time column, value columns) as one
`Panel`: every series' rows stacked into one (T, F) array, in id order and time order within
each id, with the row offsets of each series. A wide table is the panel of one series, so the
rest of lstmcast has one code path for both.

Windows never cross a series boundary (`panel_starts`), each series is scaled on its own
training rows (`fit_panel_scaler`), and static covariates (constant per id) are kept once per
series, numeric or as category codes (`Static`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lstmcast.checks import check_choice
from lstmcast.data.calendar import dates_only, time_text
from lstmcast.data.macro import Macro, check_reaches
from lstmcast.data.scale import KINDS, fit_scaler
from lstmcast.data.split import (
    Split,
    _boundary,
    check_split,
    split_by_fraction,
    split_by_time,
    split_windows,
)
from lstmcast.data.validate import (
    DUPLICATES,
    TimeSeries,
    _detect_time_col,
    _infer_freq,
    _listing,
    _no_repeats,
    _show,
    _time_index,
    _to_float,
    as_float32,
    auto_targets,
    breaks_line,
    collapse,
    one_line_names,
    one_row_per_key,
    prepare,
    row_list,
)
from lstmcast.errors import ConfigError, DataError, ModelFileError


@dataclass(frozen=True, eq=False)
class Static:
    """Static covariates, one row per series: `numeric` (S, n) float64 values of the numeric
    columns, `codes` (S, k) int64 category codes of the categorical ones, whose category
    labels (sorted) are `categories[name]`."""

    numeric_names: tuple[str, ...] = ()
    numeric: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    categorical_names: tuple[str, ...] = ()
    codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return self.numeric_names + self.categorical_names


class OneSeries(Protocol):
    """What `Panel.single` reads: a `TimeSeries`, or a `MappedTable` (data.mapped)."""

    @property
    def values(self) -> np.ndarray: ...
    @property
    def time(self) -> pd.DatetimeIndex | None: ...
    @property
    def targets(self) -> tuple[str, ...]: ...
    @property
    def covariates(self) -> tuple[str, ...]: ...
    @property
    def time_col(self) -> str | None: ...
    @property
    def freq(self) -> str | None: ...
    def __len__(self) -> int: ...


@dataclass(frozen=True, eq=False)
class Panel:
    """Validated series stacked into one array.

    - `values` (T, F) float32, finite: targets, then past covariates, then known-future
      covariates; series `i` is rows `bounds[i]:bounds[i + 1]`, in time order;
    - `ids` one label per series (a wide table: the one id ""), `id_col` None for wide data;
    - `time` the stacked timestamps (increasing within each series) or None;
    - `freq` the frequency most series share (None when none is regular);
    - `static` the static covariates (per series);
    - `levels` (T, V) float64: the targets' own values when the targets hold a transform of
      them (see lstmcast.data.transform), else None.
    """

    values: np.ndarray
    targets: tuple[str, ...]
    covariates: tuple[str, ...]
    future_covariates: tuple[str, ...]
    bounds: np.ndarray
    ids: tuple[str, ...]
    id_col: str | None = None
    time: pd.DatetimeIndex | None = None
    time_col: str | None = None
    freq: str | None = None
    static: Static = field(default_factory=Static)
    levels: np.ndarray | None = None

    @classmethod
    def single(cls, series: OneSeries) -> Panel:
        """The wide table `series` as the panel of one series (its arrays, not copies)."""
        return cls(
            values=series.values,
            targets=series.targets,
            covariates=series.covariates,
            future_covariates=(),
            bounds=np.array([0, len(series)], dtype=np.int64),
            ids=("",),
            time=series.time,
            time_col=series.time_col,
            freq=series.freq,
        )

    @property
    def n_series(self) -> int:
        return len(self.ids)

    @property
    def n_targets(self) -> int:
        return len(self.targets)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.targets + self.covariates + self.future_covariates

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def lengths(self) -> np.ndarray:
        return np.diff(self.bounds)

    def rows(self, i: int) -> slice:
        return slice(int(self.bounds[i]), int(self.bounds[i + 1]))

    @property
    def target_levels(self) -> np.ndarray:
        """(T, V) the targets' levels: `levels` under a transform, else the targets."""
        return self.levels if self.levels is not None else self.values[:, : self.n_targets]

    def series_of_rows(self) -> np.ndarray:
        """(T,) the series index of every stacked row."""
        return np.repeat(np.arange(self.n_series), self.lengths())

    def series(self, i: int) -> TimeSeries:
        """Series `i` alone (for plots and the timestamps after its end)."""
        rows = self.rows(i)
        time = self.time[rows] if self.time is not None else None
        freq = _infer_freq(time) if time is not None else None
        return TimeSeries(
            values=self.values[rows],
            targets=self.targets,
            covariates=self.covariates + self.future_covariates,
            time=time,
            time_col=self.time_col,
            freq=freq or self.freq,
        )


def prepare_panel(
    frame: pd.DataFrame,
    *,
    id_col: str | None,
    time_col: str | None = None,
    targets: Sequence[str] | None = None,
    covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    static: Sequence[str] = (),
    fill: str = "error",
    source: str = "data",
    allow_constant: bool = False,
    duplicates: str = "error",
) -> Panel:
    """Check `frame` and turn it into a `Panel`; DataError names the first problem.

    Without `id_col` the table is one wide series (`prepare`, then `Panel.single`); static
    covariates then make no sense and are refused. With it, rows are grouped by id (in order
    of first appearance) and sorted by time within each id; a missing id, a static column
    that varies within an id, or an empty cell (with fill "error") is named with its row
    (1 = first data row). Default targets skip row-number columns (`index_columns`).
    duplicates: rows repeating an (id, time) pair - "error" names the first, "first"/"last"
    keep that row of each pair, "mean" averages their targets and covariates (static
    columns agree within a series anyway); resolved after sorting, before gaps are filled.
    """
    check_choice("duplicates", duplicates, DUPLICATES, quote=True)
    covariates, future_covariates, static = list(covariates), list(future_covariates), list(static)
    if id_col is None:
        if static:
            raise DataError(f"{source}: --static needs --id-col (values constant per series)")
        series = prepare(
            frame,
            time_col=time_col,
            targets=targets,
            covariates=covariates + future_covariates,
            fill=fill,
            source=source,
            allow_constant=allow_constant,
            duplicates=duplicates,
        )
        panel = Panel.single(series)
        n_past = len(covariates)
        return Panel(
            values=panel.values,
            targets=series.targets,
            covariates=series.covariates[:n_past],
            future_covariates=series.covariates[n_past:],
            bounds=panel.bounds,
            ids=panel.ids,
            time=series.time,
            time_col=series.time_col,
            freq=series.freq,
        )
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    names = list(frame.columns)
    _no_repeats(names, source, "the table's header")
    one_line_names(names, source)
    if id_col not in names:
        raise DataError(
            f"{source}: unknown column '{id_col}' in --id-col; available: {_listing(names)}"
        )
    roles = {
        "--targets": list(targets or []),
        "--covariates": covariates,
        "--future-covariates": future_covariates,
        "--static": static,
    }
    seen: dict[str, str] = {}
    for flag, chosen in roles.items():
        _no_repeats(chosen, source, flag)
        for name in chosen:
            if name not in names:
                raise DataError(
                    f"{source}: unknown column '{name}' in {flag}; available: {_listing(names)}"
                )
            if name == id_col:
                raise DataError(f"{source}: column '{name}' is the id column; not in {flag}")
            if name in seen:
                raise DataError(
                    f"{source}: column '{name}' is in both {seen[name]} and {flag}; "
                    f"a column has one role"
                )
            seen[name] = flag
    if time_col is not None and time_col not in names:
        raise DataError(
            f"{source}: unknown column '{time_col}' in --time-col; available: {_listing(names)}"
        )
    if time_col is None:
        time_col = _detect_time_col(frame, exclude={id_col, *seen})
    if time_col is None and _detect_time_col(frame[[id_col]], exclude=set()) is not None:
        # Each "series" would be one date's rows in file order: trained, it learns nothing.
        raise DataError(
            f"{source}: column '{id_col}' in --id-col looks like the time column and no other "
            f"column is one; --id-col names the column that tells the series apart (a ticker, "
            f"a store), and the time column is found or named with --time-col; available: "
            f"{_listing(names)}"
        )
    if time_col in seen:
        raise DataError(
            f"{source}: column '{time_col}' is the time column; not in {seen[time_col]}"
        )

    raw_ids = frame[id_col]
    missing_id = np.flatnonzero(raw_ids.isna().to_numpy())
    if len(missing_id):
        raise DataError(
            f"{source}: column '{id_col}' row {missing_id[0] + 1} is empty; every row needs "
            f"a series id"
        )
    ids_text = raw_ids.astype(str).to_numpy()
    broken = [i for i, text in enumerate(ids_text) if breaks_line(text)]
    if broken:
        row = broken[0]
        raise DataError(
            f"{source}: column '{id_col}' row {row + 1} holds {_show(raw_ids.iloc[row])}, "
            f"which holds a line break; a series id is one line"
        )
    codes, uniques = pd.factorize(ids_text, sort=False)  # ids in order of first appearance

    target_list = list(targets) if targets else None
    if target_list is None:
        target_list = auto_targets(frame, {id_col, time_col, *seen}, source)

    # one stable sort: by id (first appearance), then time within each id
    if time_col is not None:
        time_all = _time_index(frame[time_col], time_col, source)
        order = np.lexsort((time_all.asi8, codes))
    else:
        time_all = None
        order = np.argsort(codes, kind="stable")
    keep, groups = np.arange(len(order)), None
    if time_all is not None:
        keep, groups = _pair_repeats(time_all, codes, order, duplicates, uniques, source)

    columns = target_list + covariates + future_covariates
    table = pd.DataFrame({name: _to_float(frame[name], name, source)[order] for name in columns})
    table = collapse(table, keep, groups)
    order = order[keep]
    sorted_codes = codes[order]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(sorted_codes, minlength=len(uniques)))])
    table = _fill_groups(table, sorted_codes, order, fill, source, [str(u) for u in uniques])
    values = as_float32(table, source, order)
    if not allow_constant:
        for col, name in enumerate(columns[: len(target_list)]):
            column = values[:, col]
            if column.min() == column.max():
                raise DataError(
                    f"{source}: column '{name}' is constant (every value {float(column[0])!r}) "
                    f"in every series; a constant target cannot be forecast - drop it"
                )
    time = None
    freq = None
    if time_all is not None:
        time = pd.DatetimeIndex(time_all[order], name=time_col)
        freq = _common_freq(time, bounds)
    return Panel(
        values=values,
        targets=tuple(target_list),
        covariates=tuple(covariates),
        future_covariates=tuple(future_covariates),
        bounds=bounds.astype(np.int64),
        ids=tuple(str(u) for u in uniques),
        id_col=id_col,
        time=time,
        time_col=time_col,
        freq=freq,
        static=_static(frame, static, codes, [str(u) for u in uniques], source),
    )


def _pair_repeats(
    time: pd.DatetimeIndex,
    codes: np.ndarray,
    order: np.ndarray,
    duplicates: str,
    ids: Any,
    source: str,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(keep, groups) over the sorted rows `order` leaving one row per (id, time) pair (see
    `one_row_per_key`); with "error", DataError naming the first repeated pair and its rows."""
    stamps, sorted_codes = time.asi8[order], codes[order]
    same = (np.diff(sorted_codes) == 0) & (np.diff(stamps) == 0)
    if not same.any():
        return np.arange(len(order)), None
    starts = np.concatenate([[True], ~same])
    if duplicates != "error":
        return one_row_per_key(np.cumsum(starts) - 1, duplicates)
    k = int(np.flatnonzero(same)[0])
    end = k + 1
    while end < len(order) and not starts[end]:
        end += 1
    rows = sorted(int(r) for r in order[k:end])
    times = "twice" if len(rows) == 2 else f"{len(rows)} times"
    count = int(same.sum())
    raise DataError(
        f"{source}: series '{ids[sorted_codes[k]]}' has the timestamp "
        f"{time_text(time[order[k]], dates_only(time))} "
        f"{times} (rows {row_list(rows)}); each (id, time) pair must be unique ({count} "
        f"{'row repeats' if count == 1 else 'rows repeat'} a pair; use --duplicates "
        f"first|last|mean to keep one)"
    )


def _fill_groups(
    table: pd.DataFrame,
    codes: np.ndarray,
    order: np.ndarray,
    fill: str,
    source: str,
    ids: list[str],
) -> pd.DataFrame:
    """Fill empty cells within each series (never from a neighbouring series)."""
    missing = table.isna().to_numpy()
    if not missing.any():
        return table
    if fill == "error":
        row, col = np.argwhere(missing)[0]
        raise DataError(
            f"{source}: column '{table.columns[col]}' row {order[row] + 1} (series "
            f"'{ids[codes[row]]}') is empty ({int(missing.sum())} empty cells in total); use "
            f"--fill ffill or --fill interpolate"
        )
    groups = table.groupby(codes, sort=False)
    if fill == "ffill":
        filled = groups.ffill()
        filled = filled.groupby(codes, sort=False).bfill()
    else:
        filled = groups.transform(lambda g: g.interpolate(limit_direction="both"))
    left = filled.isna().to_numpy()
    if left.any():  # a column empty in a whole series: nothing to fill it from
        row, col = np.argwhere(left)[0]
        raise DataError(
            f"{source}: column '{table.columns[col]}' is empty in every row of series "
            f"'{ids[codes[row]]}'; nothing to fill it from"
        )
    return filled


def _common_freq(time: pd.DatetimeIndex, bounds: np.ndarray) -> str | None:
    """The frequency most series share (series too short to tell do not vote)."""
    votes: dict[str, int] = {}
    for i in range(len(bounds) - 1):
        if bounds[i + 1] - bounds[i] >= 3:
            freq = _infer_freq(time[bounds[i] : bounds[i + 1]])
            if freq is not None:
                votes[freq] = votes.get(freq, 0) + 1
    return max(votes, key=lambda k: votes[k]) if votes else None


def _static(
    frame: pd.DataFrame, names: Sequence[str], codes: np.ndarray, ids: list[str], source: str
) -> Static:
    """Each static column's one value per series; DataError names the first series where a
    column varies (or is empty)."""
    numeric_names, numeric, categorical_names, cat_codes, categories = [], [], [], [], {}
    for name in names:
        column = frame[name]
        empty = np.flatnonzero(column.isna().to_numpy())
        if len(empty):
            raise DataError(
                f"{source}: static column '{name}' row {empty[0] + 1} (series "
                f"'{ids[codes[empty[0]]]}') is empty; a static covariate needs a value per series"
            )
        per_series = pd.Series(column.to_numpy()).groupby(codes, sort=True)
        varying = np.flatnonzero(per_series.nunique().to_numpy() > 1)
        if len(varying):
            k = int(varying[0])
            values = pd.unique(column.to_numpy()[codes == k])[:2]
            raise DataError(
                f"{source}: static column '{name}' is not constant in series '{ids[k]}' "
                f"(it holds {_show(values[0])} and {_show(values[1])}); a static covariate "
                f"has one value per series"
            )
        first = per_series.first().to_numpy()  # (S,) in series order
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            numeric_names.append(name)
            numeric.append(first.astype(np.float64))
        else:
            labels = sorted({str(v) for v in first})
            categorical_names.append(name)
            categories[name] = tuple(labels)
            lookup = {label: j for j, label in enumerate(labels)}
            cat_codes.append(np.array([lookup[str(v)] for v in first], dtype=np.int64))
    n = len(ids)
    return Static(
        numeric_names=tuple(numeric_names),
        numeric=np.stack(numeric, axis=1) if numeric else np.zeros((n, 0)),
        categorical_names=tuple(categorical_names),
        codes=np.stack(cat_codes, axis=1) if cat_codes else np.zeros((n, 0), dtype=np.int64),
        categories=categories,
    )


# ------------------------------------------------------------------------------------ splits
@dataclass(frozen=True)
class PanelSplit:
    """One `Split` per series (local rows; None for a skipped series) and why each skipped
    series was skipped."""

    splits: tuple[Split | None, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def kept(self) -> np.ndarray:
        return np.array([s is not None for s in self.splits], dtype=bool)

    def to_dict(self) -> dict[str, Any]:
        return {
            "splits": [
                None if s is None else [list(s.train), list(s.val), list(s.test)]
                for s in self.splits
            ],
            "skipped": [list(pair) for pair in self.skipped],
        }

    @classmethod
    def from_dict(cls, data: Any) -> PanelSplit:
        try:
            splits = tuple(
                None if s is None else Split(tuple(s[0]), tuple(s[1]), tuple(s[2]))
                for s in data["splits"]
            )
            skipped = tuple((str(a), str(b)) for a, b in data.get("skipped", []))
        except (KeyError, TypeError, ValueError, IndexError, ConfigError) as err:
            raise ModelFileError(f"the split record is malformed: {err}") from err
        return cls(splits, skipped)


def panel_splits(
    panel: Panel,
    lookback: int,
    horizon: int,
    val_fraction: float,
    test_fraction: float,
    val_start: str | None,
    test_start: str | None,
) -> PanelSplit:
    """Split every series: at the timestamps `val_start`/`test_start` (the same period for
    every series), else by fraction of each series' rows. A series too short for a window in
    each part is skipped with its reason; DataError when none remains (for one series: the
    reason itself)."""
    if test_start is not None and panel.time is None:
        raise DataError("--val-start/--test-start need a time column; the data has none")
    test_at = val_at = None
    if test_start is not None and panel.time is not None:
        test_at = _boundary("test_start", test_start, panel.time)
        val_at = _boundary("val_start", val_start, panel.time) if val_start is not None else None
        if val_at is not None and val_at >= test_at:
            raise ConfigError(f"--val-start ({val_at}) must be before --test-start ({test_at})")
    splits: list[Split | None] = []
    skipped: list[tuple[str, str]] = []
    for i in range(panel.n_series):
        n = int(panel.bounds[i + 1] - panel.bounds[i])
        try:
            if test_at is not None and panel.time is not None:
                time = panel.time[panel.rows(i)]
                if panel.n_series == 1:
                    split = split_by_time(time, val_start, test_start)  # type: ignore[arg-type]
                else:
                    test_row = int(time.searchsorted(test_at, side="left"))
                    val_row = (
                        int(time.searchsorted(val_at, side="left"))
                        if val_at is not None
                        else test_row
                    )
                    split = Split((0, val_row), (val_row, test_row), (test_row, n))
            else:
                split = split_by_fraction(n, val_fraction, test_fraction)
            check_split(split, lookback, horizon)
        except (DataError, ConfigError) as err:
            if panel.n_series == 1:
                raise
            splits.append(None)
            skipped.append((panel.ids[i], f"{n} rows: {err}"))
            continue
        splits.append(split)
    if not any(s is not None for s in splits):
        first_id, reason = skipped[0]
        raise DataError(
            f"no series is long enough for lookback {lookback} + horizon {horizon} in every "
            f"split; all {panel.n_series} were skipped, e.g. '{first_id}' ({reason})"
        )
    return PanelSplit(tuple(splits), tuple(skipped))


def panel_starts(
    panel_bounds: np.ndarray,
    split: PanelSplit,
    part: str,
    lookback: int,
    horizon: int,
    stride: int = 1,
) -> np.ndarray:
    """Every window start (a stacked row) of `part` over all kept series, series by series.
    Windows never cross a series boundary: each series' starts come from its own split."""
    pieces = [
        int(panel_bounds[i]) + split_windows(s, part, lookback, horizon, stride)
        for i, s in enumerate(split.splits)
        if s is not None
    ]
    return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)


def window_series(panel_bounds: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(N,) the series index of each window start."""
    return np.searchsorted(panel_bounds, starts, side="right") - 1


# ---------------------------------------------------------------------------------- scaling
@dataclass(frozen=True, eq=False)
class PanelScaler:
    """One scaler per series: `(a - center[i]) / scale[i]`, center and scale (S, F) float64.
    A wide table has S = 1 and is today's `Scaler`."""

    kind: str
    center: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        center = np.asarray(self.center, dtype=np.float64)
        scale = np.asarray(self.scale, dtype=np.float64)
        if center.ndim != 2 or center.shape != scale.shape:
            raise ConfigError(
                f"per-series center and scale must be 2-D arrays of one shape; got "
                f"{center.shape} and {scale.shape}"
            )
        if not (np.isfinite(center).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ConfigError("center must be finite and scale finite and > 0 in every column")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "scale", scale)

    def params(self, series: np.ndarray, width: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        """(N, width) center and scale of the series `series` (N,), in `dtype`."""
        return (
            self.center[series, :width].astype(dtype),
            self.scale[series, :width].astype(dtype),
        )

    def transform_rows(self, values: np.ndarray, series: np.ndarray) -> np.ndarray:
        """Scale the rows `values` (T, F'), row t with the scaler of series `series[t]`."""
        dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64
        center, scale = self.params(series, values.shape[1], dtype)
        return (values - center) / scale

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: Any) -> PanelScaler:
        """From `to_dict`, or a model file's single `Scaler` (a wide table's)."""
        if not isinstance(data, Mapping) or data.get("kind") not in KINDS:
            raise ModelFileError(f"scaler: malformed record {data!r:.80}")
        try:
            center = np.asarray(data["center"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
            if center.ndim == 1:
                center, scale = center[None], scale[None]
            return cls(str(data["kind"]), center, scale)
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            raise ModelFileError(f"scaler: malformed record ({err})") from err


def fit_panel_scaler(panel: Panel, split: PanelSplit, kind: str) -> PanelScaler:
    """Fit each kept series' scaler on its own training rows only (a skipped series gets
    centre 0 and scale 1; it is never forecast)."""
    rows = [
        (i, slice(int(panel.bounds[i]) + s.train[0], int(panel.bounds[i]) + s.train[1]))
        for i, s in enumerate(split.splits)
        if s is not None
    ]
    return fit_row_scalers(panel.values, rows, panel.n_series, kind)


def fit_row_scalers(
    values: np.ndarray, rows: Sequence[tuple[int, slice]], n_series: int, kind: str
) -> PanelScaler:
    """Series i's scaler fitted on the stacked rows `values[r]` of each (i, r) in `rows` (a
    series not named gets centre 0 and scale 1)."""
    center, scale = np.zeros((n_series, values.shape[1])), np.ones((n_series, values.shape[1]))
    for i, r in rows:
        fitted = fit_scaler(values[r], kind)
        center[i], scale[i] = fitted.center, fitted.scale
    return PanelScaler(kind, center, scale)


def with_macro(panel: Panel, macro: Macro) -> Panel:
    """`panel` with the macro columns joined as-of after its past covariates; rows before the
    first release are dropped (a series left with no row is dropped with them)."""
    if panel.time is None:
        raise DataError(f"{macro.source}: joining macro data needs a time column in the data")
    last = panel.time.max()
    check_reaches(macro, last)
    clash = [n for n in macro.names if n in panel.columns]
    if clash:
        raise DataError(f"{macro.source}: column '{clash[0]}' is also a column of the data")
    joined = macro.as_of(panel.time)
    keep = ~np.isnan(joined).any(axis=1)
    n_past = panel.n_targets + len(panel.covariates)
    values = np.concatenate(
        [panel.values[:, :n_past], joined.astype(np.float32), panel.values[:, n_past:]], axis=1
    )[keep]
    lengths = np.add.reduceat(keep, panel.bounds[:-1]) if len(keep) else np.zeros(0, int)
    lengths = np.where(np.diff(panel.bounds) > 0, lengths, 0)
    alive = lengths > 0
    st = panel.static
    static = Static(
        st.numeric_names,
        st.numeric[alive] if len(st.numeric) else st.numeric,
        st.categorical_names,
        st.codes[alive] if len(st.codes) else st.codes,
        st.categories,
    )
    return Panel(
        values=values,
        targets=panel.targets,
        covariates=panel.covariates + macro.names,
        future_covariates=panel.future_covariates,
        bounds=np.concatenate([[0], np.cumsum(lengths[alive])]).astype(np.int64),
        ids=tuple(i for i, a in zip(panel.ids, alive, strict=True) if a),
        id_col=panel.id_col,
        time=panel.time[keep],
        time_col=panel.time_col,
        freq=panel.freq,
        static=static,
    )
