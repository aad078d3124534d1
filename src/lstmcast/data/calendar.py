"""Calendar features: cyclic (sin, cos) encodings of each row's timestamp and a public-holiday
flag. They depend only on the row's own timestamp, so future rows get them too (no leakage)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset

from lstmcast.errors import ConfigError, DataError

# Feature name -> its period in units of the feature (the value is 0-based, 0..period-1).
FEATURES: dict[str, int] = {
    "minute": 60,
    "hour": 24,
    "dayofweek": 7,
    "dayofmonth": 31,
    "dayofyear": 366,
    "weekofyear": 53,
    "month": 12,
    "quarter": 4,
}

_DAY_NS = 86_400 * 10**9

# The length of each feature's cycle in days. "auto" keeps a feature only when the training
# rows cover at least two cycles: a cycle seen once cannot be told apart from the trend, and
# the model learns "month 3 means this year's level" instead of a season.
CYCLE_DAYS: dict[str, float] = {
    "minute": 1 / 24,
    "hour": 1,
    "dayofweek": 7,
    "dayofmonth": 31,
    "dayofyear": 365.25,
    "weekofyear": 365.25,
    "month": 365.25,
    "quarter": 365.25,
}

# "auto": (sampling step below this many days, the features that vary at that step).
# A feature is chosen when its cycle is longer than the step; coarser than quarterly: none.
_AUTO_RULES: tuple[tuple[float, tuple[str, ...]], ...] = (
    (1 / 24, ("hour", "dayofweek")),  # sub-hourly
    (1, ("hour", "dayofweek", "month")),  # hourly
    (7, ("dayofweek", "month")),  # daily, business-daily
    (28, ("weekofyear",)),  # weekly
    (80, ("month",)),  # monthly
    (365, ("quarter",)),  # quarterly
)

# Frequency aliases pandas renamed (old -> new); tried in either direction when a string
# does not parse, so both spellings work across pandas versions.
_RENAMED = {
    "H": "h",
    "BH": "bh",
    "T": "min",
    "S": "s",
    "L": "ms",
    "U": "us",
    "N": "ns",
    "M": "ME",
    "BM": "BME",
    "SM": "SME",
    "Q": "QE",
    "BQ": "BQE",
    "A": "YE",
    "Y": "YE",
    "BA": "BYE",
    "BY": "BYE",
    "AS": "YS",
    "BAS": "BYS",
}
_FREQ_PATTERN = re.compile(r"^\s*([+-]?\d*)\s*([A-Za-z]+)(-[A-Za-z]+)?\s*$")


def _calendar_error(got: object) -> ConfigError:
    listed = ", ".join(FEATURES)
    return ConfigError(
        f"The 'calendar' option takes auto, none or a comma-separated list of {listed}; got {got!r}"
    )


def _feature_names(names: Sequence[object]) -> tuple[str, ...]:
    """Validated feature names, lower-cased, duplicates dropped keeping the first."""
    chosen: dict[str, None] = {}
    for name in names:
        key = name.strip().lower() if isinstance(name, str) else name
        if key not in FEATURES:
            raise _calendar_error(name.strip() if isinstance(name, str) else name)
        chosen[str(key)] = None
    return tuple(chosen)


def _parse_offset(freq: str) -> BaseOffset | None:
    """The pandas offset of `freq`, accepting old and new aliases; None if it does not parse."""
    candidates = [freq]
    match = _FREQ_PATTERN.match(freq)
    if match:
        number, prefix, anchor = match.groups()
        renamed = {new: old for old, new in _RENAMED.items()} | _RENAMED
        if prefix in renamed:
            candidates.append(f"{number}{renamed[prefix]}{anchor or ''}")
    for candidate in candidates:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated aliases still parse; that is fine
            try:
                return to_offset(candidate)
            except (ValueError, TypeError):
                continue
    return None


def _step_days(freq: str) -> float | None:
    """The typical sampling step of `freq` in days (median over a short sample of dates, so
    business days, months and quarters need no special cases); None if unknown or zero."""
    offset = _parse_offset(freq)
    if offset is None:
        return None
    try:
        stamps = pd.date_range("2001-01-01", periods=15, freq=offset)
    except (ValueError, TypeError, ArithmeticError):
        return None
    steps = np.abs(np.diff(stamps.asi8))
    step = float(np.median(steps)) / _DAY_NS if steps.size else 0.0
    return step if step > 0 else None


def _auto_features(freq: str | None) -> tuple[str, ...]:
    """The features that vary at sampling frequency `freq` (see `_AUTO_RULES`)."""
    step = _step_days(freq) if isinstance(freq, str) else None
    if step is None:
        return ()
    for limit, features in _AUTO_RULES:
        if step < limit:
            return features
    return ()


def calendar_spec(
    value: str | Sequence[str] | None,
    freq: str | None,
    time_present: bool = True,
    span_days: float | None = None,
) -> tuple[str, ...]:
    """Resolve the --calendar option to a tuple of feature names.

    None, "none", "" and () give (). "auto" gives the features that vary at the sampling
    frequency `freq` (a pandas alias such as "h", "15min", "D", "B", "W-SUN", "MS", "QS-OCT",
    "YS"; None or unparseable: irregular, so ()), less those whose cycle the training rows
    (`span_days` long) do not cover twice (see CYCLE_DAYS). Otherwise a comma-separated string
    or a sequence of names from FEATURES, duplicates dropped keeping the first.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none"):
            return ()
        names: Sequence[object] = [part for part in text.split(",") if part.strip()]
    elif isinstance(value, Sequence):
        names = list(value)
    else:
        raise _calendar_error(value)
    if not names:
        return ()
    if not time_present:
        raise DataError("--calendar needs a time column; the data has none")
    if names == ["auto"]:
        chosen = _auto_features(freq)
        if span_days is not None:
            chosen = tuple(f for f in chosen if 2 * CYCLE_DAYS[f] <= span_days)
        return chosen
    return _feature_names(names)


def _as_datetime_index(time: object) -> pd.DatetimeIndex:
    """`time` as a DatetimeIndex without missing values (DataError otherwise)."""
    try:
        index = pd.DatetimeIndex(time)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise DataError(f"calendar features need datetime timestamps; got {error}") from None
    missing = np.flatnonzero(index.isna())
    if missing.size:
        raise DataError(
            f"calendar features need a timestamp on every row; row {missing[0]} has none"
        )
    return index


def _feature_values(time: pd.DatetimeIndex, feature: str) -> np.ndarray:
    """The 0-based value of `feature` for each timestamp (local time for tz-aware indexes)."""
    if feature == "weekofyear":
        return time.isocalendar()["week"].to_numpy(dtype=np.int64) - 1
    values = {
        "minute": lambda: time.minute,
        "hour": lambda: time.hour,
        "dayofweek": lambda: time.dayofweek,
        "dayofmonth": lambda: time.day - 1,
        "dayofyear": lambda: time.dayofyear - 1,
        "month": lambda: time.month - 1,
        "quarter": lambda: time.quarter - 1,
    }[feature]()
    return np.asarray(values, dtype=np.int64)


def _local_days(time: pd.DatetimeIndex) -> np.ndarray:
    """Each row's local calendar date as datetime64[D]."""
    local = time.tz_localize(None) if time.tz is not None else time
    return local.to_numpy().astype("datetime64[D]")


def _holiday_flags(time: pd.DatetimeIndex, country: str) -> np.ndarray:
    """1.0 where the row's local date is a public holiday of `country` ("US", "US-CA")."""
    import holidays as holidays_lib

    code, _, subdiv = country.partition("-")
    unique_days, inverse = np.unique(_local_days(time), return_inverse=True)
    if unique_days.size == 0:
        return np.zeros(0, dtype=np.float32)
    years = unique_days.astype("datetime64[Y]").astype(np.int64) + 1970
    calendar = holidays_lib.country_holidays(
        code, subdiv=subdiv or None, years=range(int(years[0]), int(years[-1]) + 1)
    )
    holiday_days = np.array(sorted(calendar.keys()), dtype="datetime64[D]")
    return np.isin(unique_days, holiday_days)[inverse.reshape(-1)].astype(np.float32)


def calendar_features(
    time: pd.DatetimeIndex, features: Sequence[str], holidays: str | None = None
) -> tuple[list[str], np.ndarray]:
    """Cyclic encodings of `time` and, optionally, a public-holiday flag.

    For each feature f: columns f_sin and f_cos = sin/cos(2*pi*value/period), value 0-based
    (FEATURES gives the periods). With `holidays` (a country code such as "US", or "US-CA"
    for a subdivision) one more column "holiday": 1.0 on that country's public holidays.
    Tz-aware indexes use their local time. Each row depends only on its own timestamp, so
    future rows get the same values they will have once observed.
    Returns (column names, float32 array of shape (len(time), columns)).
    """
    index = _as_datetime_index(time)
    chosen = _feature_names(list(features))
    country = check_holidays(holidays)
    names: list[str] = []
    columns: list[np.ndarray] = []
    for feature in chosen:
        angle = 2 * np.pi * _feature_values(index, feature) / FEATURES[feature]
        names += [f"{feature}_sin", f"{feature}_cos"]
        columns += [np.sin(angle), np.cos(angle)]
    if country is not None:
        names.append("holiday")
        columns.append(_holiday_flags(index, country))
    if not columns:
        return names, np.zeros((len(index), 0), dtype=np.float32)
    return names, np.column_stack(columns).astype(np.float32)


def _holidays_error(got: str) -> ConfigError:
    return ConfigError(
        "The 'holidays' option takes a country code such as US, GB, DE (optionally with a "
        f"subdivision, US-CA); got {got!r}"
    )


def check_holidays(country: str | None) -> str | None:
    """Validate a --holidays value: None or "" give None; otherwise a country code the
    holidays package knows, optionally "-SUBDIV" (one of that country's subdivisions).
    Returns the canonical spelling ("us-ca" -> "US-CA")."""
    if country is None:
        return None
    if not isinstance(country, str):
        raise _holidays_error(country)
    text = country.strip()
    if not text:
        return None
    import holidays as holidays_lib

    code, dash, subdiv = text.partition("-")
    supported = holidays_lib.list_supported_countries()
    code = code.strip().upper()
    if code not in supported:
        raise _holidays_error(country)
    if not dash:
        return code
    known = {name.lower(): name for name in supported[code]}
    canonical = known.get(subdiv.strip().lower())
    if canonical is None:
        raise _holidays_error(country)
    return f"{code}-{canonical}"


# ------------------------------------------------------------------------------ trading days
# Daily data that skips weekends and a few weekdays a year (holidays) is business-day data:
# US exchanges close on 9-10 weekdays a year (under 4% of them); allow twice that.
_MAX_MISSING_WEEKDAYS = 0.08


def is_business_daily(time: pd.DatetimeIndex) -> bool:
    """True for daily timestamps at one time of day, on weekdays only, in order, that skip
    every weekend and at most a few weekdays (holidays): trading-day data."""
    if len(time) < 3:
        return False
    days = time.normalize()
    if (time - days).nunique() != 1 or (time.dayofweek >= 5).any():
        return False
    local = days.tz_localize(None) if days.tz is not None else days
    steps = np.diff(local.asi8) // _DAY_NS
    if (steps < 1).any():
        return False
    weekdays = len(pd.bdate_range(local[0], local[-1]))  # every row is one of these
    return weekdays - len(local) <= _MAX_MISSING_WEEKDAYS * weekdays


def dates_only(time: pd.DatetimeIndex) -> bool:
    """True when every timestamp falls at local midnight (daily and coarser data): such times
    are dates, and messages and reports print them as the file writes them."""
    local = time.tz_localize(None) if time.tz is not None else time
    return bool((local.asi8 % _DAY_NS == 0).all())


def time_text(stamp: object, dates: bool | None = None) -> str:
    """`stamp` for a message or a report: the date alone where `dates` (by default, where the
    stamp itself falls at midnight), else date and time (str(pd.Timestamp))."""
    stamp = pd.Timestamp(stamp)  # type: ignore[arg-type]
    if dates is None:
        dates = dates_only(pd.DatetimeIndex([stamp]))
    return stamp.strftime("%Y-%m-%d") if dates else str(stamp)


def _exchange_error(got: object) -> ConfigError:
    import holidays

    known = sorted(code for code in holidays.list_supported_financial() if code.startswith("X"))
    return ConfigError(
        f"The 'exchange' option takes a market code the holidays package knows, e.g. XNYS, "
        f"XNAS, XLON, XETR ({len(known)} in all: {', '.join(known[:12])}, ...); got {got!r}"
    )


def check_exchange(code: str | None) -> str | None:
    """Validate an --exchange value (None/"" -> None); returns it upper-cased."""
    if code is None or (isinstance(code, str) and not code.strip()):
        return None
    if not isinstance(code, str):
        raise _exchange_error(code)
    import holidays

    text = code.strip().upper()
    if text not in holidays.list_supported_financial():
        raise _exchange_error(code)
    return text


def trading_days_after(last: pd.Timestamp, steps: int, exchange: str | None) -> pd.DatetimeIndex:
    """The `steps` weekdays after `last` (at its time of day), skipping `exchange`'s holidays."""
    offset: BaseOffset
    if exchange is None:
        offset = pd.offsets.BDay()
    else:
        import holidays

        years = range(last.year, last.year + 2 + steps // 200)
        closed = holidays.financial_holidays(str(check_exchange(exchange)), years=years)
        offset = pd.offsets.CustomBusinessDay(holidays=sorted(closed))
    return pd.date_range(start=last, periods=steps + 1, freq=offset)[1:]
