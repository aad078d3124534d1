"""Validate a raw table once, at the boundary, into a `TimeSeries` the rest of lstmcast trusts.

Every error is one line: the source, the column, the row (1 = first data row after the
header), the value found and what would be accepted.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstmcast import choices
from lstmcast.checks import check_choice, check_int
from lstmcast.data.calendar import is_business_daily, trading_days_after
from lstmcast.data.load import datetime_index_to_column
from lstmcast.errors import DataError

FILLS = choices.values(choices.Fill)
TIME_NAMES = ("date", "datetime", "time", "timestamp", "ds")


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
) -> TimeSeries:
    """Check `frame` and turn it into a `TimeSeries`; DataError names the first problem.

    time_col: the time column; None auto-detects one named date/datetime/time/timestamp/ds
    (any case), else the first text column that parses wholly as dates; none found means
    the rows are already in time order. targets: default every numeric column except the
    time column and the covariates. covariates: extra input columns (default none).
    fill: what to do with empty cells - "error", "ffill" (then back fill leading gaps) or
    "interpolate" (linear by position, both directions). source names the data in messages.
    allow_constant: accept constant columns (new data for a fitted model, whose scaler came
    from the training rows: a flag may well be flat over a short recent window).
    """
    check_choice("fill", fill, FILLS, quote=True)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    frame = datetime_index_to_column(frame, source)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    names = list(frame.columns)
    _no_repeats(names, source, "the table's header")
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
    time = _parse_time(frame[time_col], time_col, source) if time_col is not None else None

    overlap = [name for name in covariate_list if name in (target_list or [])]
    if overlap:
        raise DataError(
            f"{source}: column '{overlap[0]}' is in both --targets and --covariates; "
            f"a column is either forecast or only used as input"
        )
    if target_list is None:
        skip = set(covariate_list) | {time_col}
        target_list = [n for n in names if n not in skip and _looks_numeric(frame[n])]
    if not target_list:
        raise DataError(
            f"{source}: no target columns; found no numeric column to forecast among "
            f"{_listing(names)} (choose some with --targets)"
        )

    columns = target_list + covariate_list
    table = pd.DataFrame({name: _to_float(frame[name], name, source) for name in columns})
    table = _fill_gaps(table, fill, source)
    values = as_float32(table, source)
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


def _no_repeats(names: Sequence[str], source: str, where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{source}: column '{name}' appears twice in {where}")
        seen.add(name)


def _is_text(column: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)


def _looks_numeric(column: pd.Series) -> bool:
    """Numeric dtype, or text where most filled cells read as numbers (a stray typo in a
    numeric column then gets an error naming its row, while a label column is skipped)."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return True
    if not _is_text(column):
        return False
    filled = column.dropna()
    parsed = pd.to_numeric(filled, errors="coerce")
    return len(filled) > 0 and int(parsed.notna().sum()) * 2 > len(filled)


def _to_float(column: pd.Series, name: str, source: str) -> np.ndarray:
    """float64 values of a target/covariate column; DataError at the first bad cell."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    elif _is_text(column):
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        # Blank strings (from a DataFrame built by hand) are empty cells, not bad numbers.
        text = column.astype("string").str.strip()
        present = (text.notna() & (text != "")).fillna(False).to_numpy(dtype=bool)
        bad = np.flatnonzero(np.isnan(values) & present)
        if len(bad):
            row = int(bad[0])
            raise DataError(
                f"{source}: column '{name}' row {row + 1} holds {_show(column.iloc[row])}, "
                f"which is not a number; targets and covariates must be numeric"
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
        f"{source}: column '{table.columns[col]}' row {row + 1} is empty "
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
    """Parse text to datetimes; unparsable cells become NaT instead of raising."""
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
            except (ValueError, TypeError):
                parsed = None
        if parsed is None or not pd.api.types.is_datetime64_any_dtype(parsed):
            # Mixed UTC offsets (e.g. across a DST change): put them on one clock. pandas 2
            # returns object dtype here where pandas 3 raises; both end up in this branch.
            parsed = pd.to_datetime(column, format="mixed", errors="coerce", utc=True)
    return parsed


def _parse_time(column: pd.Series, name: str, source: str) -> pd.DatetimeIndex:
    """Parse and check the time column: every row a timestamp, unique, increasing."""
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
    time = pd.DatetimeIndex(parsed, name=name)

    repeated = np.flatnonzero(time.duplicated(keep="first"))
    if len(repeated):
        row = int(repeated[0])
        first = int(np.flatnonzero(time == time[row])[0])
        raise DataError(
            f"{source}: column '{name}' has a duplicate timestamp {time[row]} at rows {first + 1} "
            f"and {row + 1}; each row needs its own time"
        )
    backwards = np.flatnonzero(np.diff(time.asi8) < 0)
    if len(backwards):
        row = int(backwards[0]) + 1
        raise DataError(
            f"{source}: column '{name}' is not in increasing order: row {row + 1} "
            f"({time[row]}) comes after row {row} ({time[row - 1]}); sort the rows by time"
        )
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
