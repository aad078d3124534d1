"""Macro data at its own frequency (monthly CPI, quarterly GDP) joined to a series as-of: each
row sees the latest value released at or before its time, a value being released `lag` after
the timestamp it is dated by (`--release-lag 45D`: a month's CPI is public about two weeks after
the month ends). Never interpolated, never back-filled: rows before the first release are
dropped, so no future macro value reaches any window."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstmcast.data.calendar import time_text
from lstmcast.data.load import read_table_digest
from lstmcast.data.validate import _detect_time_col, _parse_time, _to_float
from lstmcast.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False)
class Macro:
    """Macro columns `names` with their values (K, M) float64 and the time each value became
    usable, `released` (K,) increasing: its timestamp plus the release lag."""

    names: tuple[str, ...]
    values: np.ndarray
    released: pd.DatetimeIndex
    source: str

    def as_of(self, time: pd.DatetimeIndex) -> np.ndarray:
        """(T, M): for each row time, the latest value released at or before it (NaN before
        the first release)."""
        released = self.released
        if released.tz is None and time.tz is not None:
            released = released.tz_localize(time.tz)
        index = np.searchsorted(released.asi8, time.asi8, side="right") - 1
        out = np.full((len(time), len(self.names)), np.nan)
        known = index >= 0
        out[known] = self.values[index[known]]
        return out


def parse_lag(value: str | None) -> pd.Timedelta:
    """--release-lag as a Timedelta ('30D', '2W', '36h'); None is no lag."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return pd.Timedelta(0)
    try:
        lag = pd.Timedelta(str(value).strip())
    except (ValueError, TypeError):
        lag = pd.NaT  # type: ignore[assignment]
    if lag is pd.NaT or pd.isna(lag) or lag < pd.Timedelta(0):
        raise ConfigError(
            f"The 'release_lag' option takes a duration >= 0 such as 30D, 2W or 36h. "
            f"Got {value!r} instead."
        )
    return lag


def read_macro(path: str | Path, lag: str | None) -> Macro:
    """Read a macro table: a time column (the date each value is dated by) and numeric
    columns. DataError names the file and the problem."""
    frame, _digest = read_table_digest(path)
    source = f"macro file '{path}'"
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    time_col = _detect_time_col(frame, exclude=set())
    if time_col is None:
        raise DataError(
            f"{source} has no time column (a column of dates named date/time/... or of "
            f"parseable dates); it needs one, the date each value is dated by"
        )
    # --duplicates does not apply here: a repeated date is usually a revision, and keeping the
    # revised figure at the original date would let a later release into earlier rows
    advice = "; keep one row per date, its first-released value: a revision dated back leaks"
    time = _parse_time(frame[time_col], time_col, source, advice)
    names = [c for c in frame.columns if c != time_col]
    if not names:
        raise DataError(f"{source} has no value column besides '{time_col}'")
    values = np.stack([_to_float(frame[c], c, source) for c in names], axis=1)
    if np.isnan(values).any():
        row, col = np.argwhere(np.isnan(values))[0]
        raise DataError(
            f"{source}: column '{names[col]}' row {row + 1} is empty; a macro value is never "
            f"filled in (it would invent a figure)"
        )
    released = pd.DatetimeIndex(time + parse_lag(lag))
    return Macro(tuple(names), values, released, source)


def check_reaches(macro: Macro, last: pd.Timestamp) -> None:
    """DataError when no macro value is released by the data's last timestamp."""
    first = macro.released[0]
    if first.tz is None and last.tz is not None:
        first = first.tz_localize(last.tz)
    if first > last:
        raise DataError(
            f"{macro.source}: its first value is released {time_text(first)} (with the release "
            f"lag), after the data ends ({time_text(last)}); no row could use it"
        )
