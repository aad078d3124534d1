"""Validate a raw table once, at the boundary, into a `TimeSeries` the rest of lstmcast trusts.

Every error is one line: the source, the column, the row (1 = first data row after the
header), the value found and what would be accepted.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from lstmcast import choices
from lstmcast.checks import check_choice, check_int
from lstmcast.data.calendar import dates_only, is_business_daily, time_text, trading_days_after
from lstmcast.data.load import datetime_index_to_column
from lstmcast.errors import DataError

FILLS = choices.values(choices.Fill)
DUPLICATES = choices.values(choices.Duplicates)
TIME_NAMES = ("date", "datetime", "time", "timestamp", "ds")
# Names R and pandas give the column of row names/numbers they write (any case).
INDEX_NAMES = ("rownames", "index", "unnamed: 0")
_UNNAMED = re.compile(r"\s*(?:Unnamed: \d+)?\s*")  # a blank header, as pandas reads one
# What str.splitlines breaks at: a column name or series id holding one would split messages.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
# Numbers with thousands separators ("1,234,567.5"); a percent string is its number + "%".
_GROUPED = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


KEEP_ONE = "; use --duplicates first|last|mean to keep one"


@dataclass(frozen=True, eq=False)
class TimeSeries:
    """A validated multivariate series.

    Guarantees (checked by `prepare`):
    - `values` is a float32, C-contiguous (T, F) array with T >= 2, every value finite, the
      targets in the first `n_targets` columns and the covariates after them;
    - column names are unique strings, targets and covariates do not overlap, and no column
      is constant;
    - `time` is None (row order is time order) or a DatetimeIndex of length T, strictly
      increasing (sorted, no duplicates), named `time_col`;
    - `freq` is the pandas frequency string inferred from `time`, or None when irregular.
    """

    values: np.ndarray
    targets: tuple[str, ...]
    covariates: tuple[str, ...]
    time: pd.DatetimeIndex | None = None
    time_col: str | None = None
    freq: str | None = None

    def __post_init__(self) -> None:
        values = np.ascontiguousarray(self.values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != len(self.targets) + len(self.covariates):
            raise DataError(
                f"values of shape {values.shape} do not match {len(self.targets)} targets + "
                f"{len(self.covariates)} covariates"
            )
        if self.time is not None and len(self.time) != values.shape[0]:
            raise DataError(f"time has {len(self.time)} entries but values {values.shape[0]} rows")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "covariates", tuple(self.covariates))

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names in `values` order: targets, then covariates."""
        return self.targets + self.covariates

    @property
    def n_targets(self) -> int:
        """Number of target columns (the first columns of `values`)."""
        return len(self.targets)

    @property
    def n_features(self) -> int:
        """Number of columns in `values` (targets + covariates)."""
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def future_index(self, steps: int, exchange: str | None = None) -> pd.DatetimeIndex | range:
        """Labels for the `steps` rows after the last one: timestamps continuing `freq`
        (business-day data on weekdays, skipping `exchange`'s holidays when given), row
        numbers when there is no time column, and step numbers 1..steps when the timestamps
        follow no known calendar (see `irregular_note`)."""
        steps = check_int("steps", steps)
        n_rows = len(self)
        if self.time is None:
            return range(n_rows, n_rows + steps)
        last = self.time[-1]
        if self.freq == "B" or (exchange is not None and self.freq in ("B", "D", "C")):
            index = trading_days_after(last, steps, exchange)
        elif self.freq is not None:
            index = pd.date_range(start=last, periods=steps + 1, freq=self.freq)[1:]
        else:
            return range(1, steps + 1)
        return index.rename(self.time.name)

    def holidays_note(self, exchange: str | None) -> str | None:
        """On business-day data without `exchange`, that the forecast's dates are weekdays,
        holidays among them (None otherwise): a market's next trading day may come later."""
        if self.time is None or self.freq != "B" or exchange is not None:
            return None
        return (
            f"'{self.time_col}' holds business days, so the forecast is dated on the next "
            f"weekdays, public holidays included; give the exchange (--exchange, e.g. XNYS) "
            f"to date it on that market's trading days"
        )

    @property
    def irregular_note(self) -> str | None:
        """Why forecast steps are numbered rather than dated (None when they are dated)."""
        if self.time is None or self.freq is not None:
            return None
        return (
            f"the timestamps of '{self.time_col}' follow no regular frequency or trading "
            f"calendar, so forecast steps are numbered 1..H instead of dated"
        )


def prepare(
    frame: pd.DataFrame,
    *,
    time_col: str | None = None,
    targets: str | Sequence[str] | None = None,
    covariates: str | Sequence[str] | None = None,
    fill: str = "error",
    source: str = "data",
    allow_constant: bool = False,
    duplicates: str = "error",
) -> TimeSeries:
    """Check `frame` and turn it into a `TimeSeries`; DataError names the first problem.

    time_col: the time column; None auto-detects one named date/datetime/time/timestamp/ds
    (any case), else the first text column that parses wholly as dates (quarter, month and
    ISO week labels included: "1970 Q1", "2020-03", "2020-W05"); none found means the rows
    are already in time order. targets: default every numeric column except the time
    column, the covariates and the row-number columns (`index_columns`); text cells such as
    "1,234" and "5%" count as numbers (5% is read as 5.0). covariates: extra input columns
    (default none). fill: what to do with empty cells - "error", "ffill" (then back fill
    leading gaps) or "interpolate" (linear by position, both directions). source names the
    data in messages. allow_constant: accept constant columns (new data for a fitted model,
    whose scaler came from the training rows: a flag may well be flat over a short recent
    window). duplicates: rows repeating a timestamp - "error", or keep the "first" or the
    "last" of them, or their "mean" (of every target and covariate); resolved before the
    time order is checked.
    """
    check_choice("fill", fill, FILLS, quote=True)
    check_choice("duplicates", duplicates, DUPLICATES, quote=True)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    frame = datetime_index_to_column(frame, source)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    names = list(frame.columns)
    _no_repeats(names, source, "the table's header")
    one_line_names(names, source)
    n_rows = len(frame)
    if n_rows < 2:
        raise DataError(f"{source}: has {n_rows} row(s) of data; forecasting needs at least 2")

    target_list = _as_list(targets)
    covariate_list = _as_list(covariates) or []
    for flag, chosen in (("--targets", target_list), ("--covariates", covariate_list)):
        _no_repeats(chosen or [], source, flag)
        for name in chosen or []:
            if name not in names:
                raise DataError(
                    f"{source}: unknown column '{name}' in {flag}; available: {_listing(names)}"
                )

    # The time column: explicit, else by name, else the first text column of dates.
    if time_col is not None:
        if time_col not in names:
            raise DataError(
                f"{source}: unknown column '{time_col}' in --time-col; available: {_listing(names)}"
            )
    else:
        chosen_cols = set(target_list or []) | set(covariate_list)
        time_col = _detect_time_col(frame, exclude=chosen_cols)
    for flag, chosen in (("--targets", target_list), ("--covariates", covariate_list)):
        if time_col is not None and time_col in (chosen or []):
            raise DataError(
                f"{source}: column '{time_col}' is the time column; it cannot be in {flag}"
            )
    keep, groups = np.arange(n_rows), None
    time = None
    if time_col is not None:
        time = _time_index(frame[time_col], time_col, source)
        advice = functools.partial(_long_table_advice, frame, time, time_col)  # on error only
        keep, groups = _repeats(time, duplicates, time_col, source, advice)
        time = time[keep]
        _check_increasing(time, keep, time_col, source)
        if len(keep) < 2:
            raise DataError(
                f"{source}: has {len(keep)} row(s) of data once repeated timestamps are merged; "
                f"forecasting needs at least 2"
            )

    overlap = [name for name in covariate_list if name in (target_list or [])]
    if overlap:
        raise DataError(
            f"{source}: column '{overlap[0]}' is in both --targets and --covariates; "
            f"a column is either forecast or only used as input"
        )
    if target_list is None:
        skip = set(covariate_list) | {time_col}
        target_list = auto_targets(frame, skip, source)

    columns = target_list + covariate_list
    table = pd.DataFrame({name: _to_float(frame[name], name, source) for name in columns})
    table = _fill_gaps(collapse(table, keep, groups), fill, source)
    values = as_float32(table, source, keep)
    for col, name in enumerate(columns):
        column = values[:, col]
        if not allow_constant and column.min() == column.max():
            raise DataError(
                f"{source}: column '{name}' is constant (every value {float(column[0])!r}); "
                f"a constant column cannot be scaled or forecast - drop it"
            )

    freq = _infer_freq(time) if time is not None else None
    return TimeSeries(
        values=values,
        targets=tuple(target_list),
        covariates=tuple(covariate_list),
        time=time,
        time_col=time_col,
        freq=freq,
    )


def index_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that number the rows rather than hold data, as R and pandas exports write
    them: one named rownames, index or 'Unnamed: 0' (any case) holding distinct whole
    numbers, or an unnamed one ('' or pandas' 'Unnamed: k') holding 0..N-1 or 1..N.
    Auto-detected targets skip them (a row number would be forecast as a series); a column
    named explicitly in the targets or covariates is used all the same."""
    found = []
    for i, name in enumerate(frame.columns):
        numbers = _whole_numbers(frame.iloc[:, i])
        if numbers is None:
            continue
        label = str(name)
        named = label.strip().lower() in INDEX_NAMES and len(np.unique(numbers)) == len(numbers)
        counting = np.arange(len(numbers))
        unnamed = _UNNAMED.fullmatch(label) is not None and (
            np.array_equal(numbers, counting) or np.array_equal(numbers, counting + 1)
        )
        if named or unnamed:
            found.append(label)
    return found


def auto_targets(frame: pd.DataFrame, skip: set[str | None], source: str) -> list[str]:
    """The default targets: every numeric-looking column not in `skip` and not a row-number
    column (`index_columns`); DataError when there is none."""
    index = index_columns(frame)
    names = [str(n) for n in frame.columns]
    targets = [n for n in names if n not in skip and n not in index and _looks_numeric(frame[n])]
    if not targets:
        skipped = f"; row-number columns skipped: {_listing(index)}" if index else ""
        raise DataError(
            f"{source}: no target columns; found no numeric column to forecast among "
            f"{_listing(names)} (choose some with --targets){skipped}"
        )
    return targets


def collapse(table: pd.DataFrame, keep: np.ndarray, groups: np.ndarray | None) -> pd.DataFrame:
    """The rows `keep` of `table` (see `one_row_per_key`), or with `groups` the mean of each
    group's rows (empty cells skipped); indexed by `keep`, the rows they stand for."""
    if groups is None:
        if len(keep) == len(table):
            return table
        return table.iloc[keep].set_axis(keep)
    return table.groupby(groups, sort=True).mean().set_axis(keep)


def one_row_per_key(keys: np.ndarray, duplicates: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(keep, groups) for rows labelled `keys` (0, 1, ... in order of first appearance):
    the position of each key's first or last row, in row order; for "mean" the first rows
    and `keys` itself, to average each key's rows over."""
    if duplicates == "last":
        last = len(keys) - 1 - np.unique(keys[::-1], return_index=True)[1]
        return np.sort(last), None
    first = np.sort(np.unique(keys, return_index=True)[1])
    return first, (keys if duplicates == "mean" else None)


def row_list(rows: Sequence[int], limit: int = 5) -> str:
    """1-based row numbers for a message: '2 and 4', '2, 4 and 7', '2, 4, ... (9 rows)'."""
    shown = [str(int(r) + 1) for r in rows[:limit]]
    if len(rows) > limit:
        return f"{', '.join(shown)}, ... ({len(rows)} rows)"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _whole_numbers(column: pd.Series) -> np.ndarray | None:
    """The column as int64 when every cell is a whole number (no empty cell), else None."""
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        return None
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    if len(values) == 0 or not np.isfinite(values).all() or (values != np.round(values)).any():
        return None
    if np.abs(values).max() > 2.0**53:
        return None
    return values.astype(np.int64)


def as_float32(table: pd.DataFrame, source: str, rows: np.ndarray | None = None) -> np.ndarray:
    """The table's values as float32; DataError names the first cell too large for float32
    (`rows`: each table row's row number in the source, 0-based; default the same)."""
    with np.errstate(over="ignore"):  # overflow to inf is reported just below, by cell
        values = table.to_numpy(dtype=np.float32)
    if not np.isfinite(values).all():
        row, col = np.argwhere(~np.isfinite(values))[0]
        where = int(rows[row]) if rows is not None else int(row)
        raise DataError(
            f"{source}: column '{table.columns[col]}' row {where + 1} holds "
            f"{_show(table.iat[row, col])}, too large for float32 (limit about 3.4e38)"
        )
    return values


def _show(value: object) -> str:
    """repr of a cell as the user typed it: 1e+39 and 'abc', not np.float64(1e+39)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) and isinstance(value, np.generic) else value)


def _as_list(names: str | Sequence[str] | None) -> list[str] | None:
    # A bare string is one column name, not a sequence of one-letter names.
    if names is None:
        return None
    if isinstance(names, str):
        return [names]
    return [str(name) for name in names]


def _listing(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit} more)"


def breaks_line(text: str) -> bool:
    """Whether `text` holds a line break (of any kind str.splitlines knows)."""
    return any(char in LINE_BREAKS for char in text)


def one_line_names(names: Sequence[str], source: str) -> None:
    """DataError for a column name with a line break in it (a quoted header cell can hold
    one): every message names columns, and each message is one line."""
    for i, name in enumerate(names):
        if breaks_line(name):
            raise DataError(
                f"{source}: column {i + 1} is named {name!r}, which holds a line break; rename it"
            )


def _no_repeats(names: Sequence[str], source: str, where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{source}: column '{name}' appears twice in {where}")
        seen.add(name)


def _long_table_advice(frame: pd.DataFrame, time: pd.DatetimeIndex, time_col: str) -> str:
    """The advice for repeated timestamps: --id-col first where a label column tells the rows
    of each timestamp apart (a long table of several series read as one wide table, which
    --duplicates would merge into one series), else --duplicates."""
    for name in frame.columns:
        column = frame[name]
        if name == time_col or not _is_text(column) or _looks_numeric(column):
            continue
        if column.nunique() < 2:
            continue
        pairs = pd.DataFrame({"id": column.to_numpy(), "time": time.asi8})
        if not pairs.duplicated().any():
            return (
                f"; it looks like a long table of several series, one per '{name}': give "
                f"--id-col {name}, or{KEEP_ONE.removeprefix(';')}"
            )
    return KEEP_ONE


def _is_text(column: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)


def _looks_numeric(column: pd.Series) -> bool:
    """Numeric dtype, or text where most filled cells read as numbers (see `_text_numbers`:
    a stray typo in a numeric column then gets an error naming its row, while a label column
    is skipped)."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return True
    if not _is_text(column):
        return False
    values, present = _text_numbers(column)
    filled = int(present.sum())
    return filled > 0 and int((~np.isnan(values) & present).sum()) * 2 > filled


def _text_numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, filled mask) of a text column. Besides plain numbers, a cell may
    group thousands with commas ("1,234,567.5") or be a percent string, read as its number
    ("5.0%" -> 5.0: a column of percentages keeps its unit). Empty, blank and unreadable
    cells are NaN; blank strings (from a DataFrame built by hand) are not `filled`."""
    values = _numbers(column)
    present = column.notna().to_numpy(dtype=bool)
    failed = np.flatnonzero(np.isnan(values) & present)
    if len(failed) == 0:  # the common case: only the cells pandas could not read need work
        return values, present
    text = column.iloc[failed].astype("string").str.strip()
    blank = (text == "").fillna(True).to_numpy(dtype=bool)
    present[failed[blank]] = False
    marked = text.str.contains("[,%]", regex=True).fillna(False).to_numpy(dtype=bool) & ~blank
    if marked.any():
        body = text[marked].str.removesuffix("%").str.rstrip()
        grouped = body.str.fullmatch(_GROUPED.pattern).fillna(False)
        body = body.where(~grouped, body.str.replace(",", "", regex=False))
        values[failed[marked]] = _numbers(body)
    return values, present


def _numbers(column: pd.Series) -> np.ndarray:
    """float64 of every cell that reads as a number (pandas' rules), else NaN; a fresh array."""
    parsed = pd.Series(pd.to_numeric(column, errors="coerce"), index=column.index)
    return np.array(parsed.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _to_float(column: pd.Series, name: str, source: str) -> np.ndarray:
    """float64 values of a target/covariate column; DataError at the first bad cell."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    elif _is_text(column):
        values, present = _text_numbers(column)
        bad = np.flatnonzero(np.isnan(values) & present)
        if len(bad):
            row = int(bad[0])
            raise DataError(
                f"{source}: column '{name}' row {row + 1} holds {_show(column.iloc[row])}, "
                f"which is not a number; targets and covariates must be numeric (like 1.5, "
                f"1,234 or 5%)"
            )
    else:
        raise DataError(
            f"{source}: column '{name}' has type {column.dtype} (row 1: {_show(column.iloc[0])}); "
            f"targets and covariates must be numeric"
        )
    infinite = np.flatnonzero(np.isinf(values))
    if len(infinite):
        row = int(infinite[0])
        raise DataError(
            f"{source}: column '{name}' row {row + 1} holds {values[row]}; values must be finite"
        )
    if np.isnan(values).all():
        raise DataError(f"{source}: column '{name}' has no values (all {len(values)} rows empty)")
    return values


def _fill_gaps(table: pd.DataFrame, fill: str, source: str) -> pd.DataFrame:
    missing = table.isna().to_numpy()
    if not missing.any():
        return table
    if fill == "ffill":
        return table.ffill().bfill()
    if fill == "interpolate":
        return table.interpolate(method="linear", limit_direction="both")
    row, col = np.argwhere(missing)[0]  # row-major: the earliest empty cell
    raise DataError(
        f"{source}: column '{table.columns[col]}' row {int(table.index[row]) + 1} is empty "
        f"({int(missing.sum())} empty cells in total); use --fill ffill or --fill interpolate"
    )


def _detect_time_col(frame: pd.DataFrame, exclude: set[str]) -> str | None:
    candidates = [name for name in frame.columns if name not in exclude]
    for name in candidates:
        if name.lower() in TIME_NAMES:
            return str(name)
    for name in candidates:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            return str(name)
        if _is_text(column) and not _looks_numeric(column) and _all_dates(column):
            return str(name)
    return None


def _all_dates(column: pd.Series) -> bool:
    filled = column.dropna()
    if len(filled) == 0:
        return False
    # Cheap test on one cell first so label columns are not parsed in full.
    if _to_datetime(filled.iloc[:1]).isna().any():
        return False
    return not bool(_to_datetime(filled).isna().any())


def _to_datetime(column: pd.Series) -> pd.Series:
    """Parse text to datetimes; unparsable cells become NaT instead of raising. A column of
    quarter, month or ISO week labels becomes its periods' first days (`_period_starts`)."""
    periods = _period_starts(column)
    if periods is not None:
        return periods
    with warnings.catch_warnings():
        # "Could not infer format" warnings are noise here: failures are reported by row.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)  # pandas 2's note on mixed offsets
        try:
            parsed = pd.to_datetime(column)  # fast: one format inferred from the first cell
        except (ValueError, TypeError, OverflowError):
            parsed = None
        if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed):
            try:
                parsed = pd.to_datetime(column, format="mixed", errors="coerce")
            except (ValueError, TypeError, OverflowError):
                parsed = None
        if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed):
            # Mixed UTC offsets (e.g. across a DST change): put them on one clock. pandas 2
            # returns object dtype here where pandas 3 raises; both end up in this branch.
            parsed = pd.to_datetime(column, format="mixed", errors="coerce", utc=True)
    return parsed


def _quarter_start(year: int, quarter: int) -> pd.Timestamp:
    return pd.Timestamp(year=year, month=3 * quarter - 2, day=1)


def _month_start(year: int, month: int) -> pd.Timestamp:
    return pd.Timestamp(year=year, month=month, day=1)


def _week_start(year: int, week: int) -> pd.Timestamp:
    return pd.Timestamp(date.fromisocalendar(year, week, 1))  # the Monday of ISO week


# Period labels pandas reads wrongly or not at all (groups: year and number, or the reverse).
_PERIOD_LABELS: tuple[tuple[re.Pattern[str], bool, Callable[[int, int], pd.Timestamp]], ...] = (
    (re.compile(r"(\d{4})\s*[-/ ]?\s*[Qq]([1-4])"), False, _quarter_start),  # 1970 Q1, 1970-Q1
    (re.compile(r"[Qq]([1-4])\s*[-/ ]?\s*(\d{4})"), True, _quarter_start),  # Q1 1970
    (re.compile(r"(\d{4})-?W(\d{1,2})"), False, _week_start),  # ISO week: 2020-W05, 2020W05
    (re.compile(r"(\d{4})-?M(\d{1,2})"), False, _month_start),  # 2020M03 (2020-03: pandas)
)


def _period_starts(column: pd.Series) -> pd.Series | None:
    """Period-start timestamps of a text column wholly of one kind of quarter, ISO week or
    month label (see `_PERIOD_LABELS`), NaT in its empty cells and for impossible periods
    (week 53 of a 52-week year, a year out of range); None for any other column."""
    if not _is_text(column):
        return None
    at = np.flatnonzero(column.notna().to_numpy())  # positions: the index may repeat labels
    if len(at) == 0:
        return None
    head = str(column.iloc[at[0]]).strip()
    if head and not any(entry[0].fullmatch(head) for entry in _PERIOD_LABELS):
        return None  # cheap: dates, numbers and labels are turned away on one cell
    text = column.iloc[at].astype("string").str.strip()
    blank = (text == "").to_numpy(dtype=bool)
    at, filled = at[~blank], text[~blank]
    if len(at) == 0:
        return None
    for pattern, reversed_, start in _PERIOD_LABELS:
        if pattern.fullmatch(str(filled.iloc[0])) is None:
            continue
        parts = filled.str.extract(f"^(?:{pattern.pattern})$")
        if bool(parts.isna().to_numpy().any()):
            return None
        first, second = parts[0].astype(int).tolist(), parts[1].astype(int).tolist()
        pairs = zip(second, first, strict=True) if reversed_ else zip(first, second, strict=True)
        stamps = np.full(len(column), np.datetime64("NaT"), dtype="datetime64[ns]")
        stamps[at] = pd.DatetimeIndex([_period_or_nat(start, y, n) for y, n in pairs]).to_numpy()
        return pd.Series(stamps, index=column.index)
    return None


def _period_or_nat(
    start: Callable[[int, int], pd.Timestamp], year: int, number: int
) -> pd.Timestamp | None:
    try:
        return start(year, number)
    except (ValueError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        return None  # NaT in the index


def _time_index(column: pd.Series, name: str, source: str) -> pd.DatetimeIndex:
    """Parse the time column; DataError at the first row that holds no timestamp."""
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column
    elif _is_text(column):
        parsed = _to_datetime(column)
    else:
        raise DataError(
            f"{source}: column '{name}' holds {column.dtype} values (row 1: "
            f"{_show(column.iloc[0])}), not dates; pass --time-col with a date column, or drop "
            f"'{name}' if the rows are already in time order"
        )
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raw = column.iloc[row]
        if pd.isna(raw):
            raise DataError(
                f"{source}: column '{name}' row {row + 1} is empty; every row needs a time"
            )
        raise DataError(
            f"{source}: column '{name}' row {row + 1} holds {_show(raw)}, which is not a date/time"
        )
    return pd.DatetimeIndex(parsed, name=name)


def _repeats(
    time: pd.DatetimeIndex,
    duplicates: str,
    name: str,
    source: str,
    advice: str | Callable[[], str] = KEEP_ONE,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(keep, groups) that leave one row per timestamp (see `one_row_per_key`); with
    "error", DataError naming the first repeated timestamp, its rows and how many rows
    repeat one, and `advice` (by default the --duplicates choices; a function is called only
    for the error)."""
    repeated = time.duplicated(keep="first")
    if not repeated.any():
        return np.arange(len(time)), None
    if duplicates == "error":
        advice = advice() if callable(advice) else advice
        row = int(np.flatnonzero(repeated)[0])
        rows = np.flatnonzero(time == time[row]).tolist()
        count, stamp = int(repeated.sum()), time_text(time[row], dates_only(time))
        raise DataError(
            f"{source}: column '{name}' has a duplicate timestamp {stamp} at rows "
            f"{row_list(rows)}; each row needs its own time ({count} "
            f"{'row repeats' if count == 1 else 'rows repeat'} an earlier timestamp{advice})"
        )
    return one_row_per_key(pd.factorize(time)[0], duplicates)


def _check_increasing(time: pd.DatetimeIndex, rows: np.ndarray, name: str, source: str) -> None:
    """DataError at the first timestamp earlier than the one before it (`rows`: each
    timestamp's row in the table, 0-based)."""
    backwards = np.flatnonzero(np.diff(time.asi8) < 0)
    if len(backwards):
        k, dates = int(backwards[0]) + 1, dates_only(time)
        raise DataError(
            f"{source}: column '{name}' is not in increasing order: row {int(rows[k]) + 1} "
            f"({time_text(time[k], dates)}) comes after row {int(rows[k - 1]) + 1} "
            f"({time_text(time[k - 1], dates)}); sort the "
            f"rows by time"
        )


def _parse_time(column: pd.Series, name: str, source: str, advice: str = "") -> pd.DatetimeIndex:
    """Parse and check the time column: every row a timestamp, unique (`advice` follows the
    message naming a repeat), increasing."""
    time = _time_index(column, name, source)
    _repeats(time, "error", name, source, advice=advice)
    _check_increasing(time, np.arange(len(time)), name, source)
    return time


def _infer_freq(time: pd.DatetimeIndex) -> str | None:
    with warnings.catch_warnings():
        # pandas 3 warns that infer_freq will return an offset object; we read .freqstr.
        warnings.simplefilter("ignore")
        try:
            freq = pd.infer_freq(time)
        except (ValueError, TypeError):  # fewer than 3 timestamps
            return None
    if freq is None:  # daily data skipping weekends and holidays: trading days
        return "B" if is_business_daily(time) else None
    return str(getattr(freq, "freqstr", freq))
