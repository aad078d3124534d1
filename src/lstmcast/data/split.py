"""Chronological train/val/test splits as row ranges, and the window starts inside each."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstmcast.checks import check_int
from lstmcast.data.calendar import dates_only, time_text
from lstmcast.errors import ConfigError, DataError

# Row counts computed as n * fraction land a hair below an integer (100 * 0.29 = 28.999...);
# this nudge makes int() give the count a person would write down.
_EPS = 1e-9


@dataclass(frozen=True)
class Split:
    """Half-open row ranges `(start, end)` for train, val and test.

    The ranges are contiguous and in time order: train ends where val starts, val ends where
    test starts. Train starts at row 0. `val` may be empty (start == end). Splits made by
    `split_by_fraction` and `split_by_time` cover every row; `split_by_rows` may leave rows
    after `test[1]` unused (benchmark protocols with fixed row counts do that).
    """

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def __post_init__(self) -> None:
        parts = {"train": self.train, "val": self.val, "test": self.test}
        for name, (start, end) in parts.items():
            if not 0 <= start <= end:
                raise ConfigError(f"the {name} split ({start}, {end}) is not a valid row range")
        if self.train[0] != 0 or self.train[1] != self.val[0] or self.val[1] != self.test[0]:
            raise ConfigError(
                f"splits must be contiguous from row 0; got train {self.train}, "
                f"val {self.val}, test {self.test}"
            )

    def sizes(self) -> dict[str, int]:
        """Rows per split, e.g. {'train': 700, 'val': 100, 'test': 200}."""
        return {
            "train": self.train[1] - self.train[0],
            "val": self.val[1] - self.val[0],
            "test": self.test[1] - self.test[0],
        }


def _fraction(name: str, value: object, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        ok = False
    else:
        ok = (0 < value < 1) if low_open else (0 <= value < 1)
    if not ok:
        interval = "(0, 1)" if low_open else "[0, 1)"
        raise ConfigError(
            f"The '{name}' parameter must be a number in {interval}. Got {value!r} instead."
        )
    return float(value)  # type: ignore[arg-type]


def split_by_fraction(n_rows: int, val_fraction: float = 0.1, test_fraction: float = 0.2) -> Split:
    """Split `n_rows` rows in time order: train, then val, then test.

    As in the standard benchmark protocol, train gets `int(n * (1 - val - test))` rows, test
    gets `int(n * test)` rows and val the rest (so train + val + test == n). With
    `val_fraction=0` val is empty and the rounding remainder goes to train.
    """
    n_rows = check_int("n_rows", n_rows)
    val = _fraction("val_fraction", val_fraction, low_open=False)
    test = _fraction("test_fraction", test_fraction, low_open=True)
    if val + test >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction must be below 1 so that rows remain for training; "
            f"got {val} + {test} = {val + test:g}"
        )
    n_test = math.floor(n_rows * test + _EPS)
    n_train = n_rows - n_test if val == 0 else math.floor(n_rows * (1 - val - test) + _EPS)
    n_val = n_rows - n_train - n_test
    return Split((0, n_train), (n_train, n_train + n_val), (n_train + n_val, n_rows))


def _boundary(name: str, value: object, time: pd.DatetimeIndex) -> pd.Timestamp:
    """Parse a split boundary and align its time zone with the data's."""
    flag = "--" + name.replace("_", "-")
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError, OverflowError):
        stamp = pd.NaT  # type: ignore[assignment]
    if stamp is pd.NaT or pd.isna(stamp):
        raise ConfigError(
            f"The '{name}' parameter must be a date/time such as '2018-01-01'. "
            f"Got {value!r} instead."
        )
    if time.tz is not None and stamp.tz is None:
        stamp = stamp.tz_localize(time.tz)
    elif time.tz is None and stamp.tz is not None:
        raise DataError(
            f"{flag} {stamp} has a time zone but the data's timestamps have none; drop the offset"
        )
    return stamp


def split_by_time(
    time: pd.DatetimeIndex | None,
    val_start: str | pd.Timestamp | None,
    test_start: str | pd.Timestamp,
) -> Split:
    """Split at timestamps: the first row with time >= `val_start` starts val, likewise test.

    `val_start=None` gives an empty val split. Every split must keep at least one row, so
    the boundaries must lie after the first timestamp and at or before the last one.
    """
    if time is None:
        raise DataError("splitting by date needs a time column, but the data has none")
    n_rows = len(time)
    test_at = _boundary("test_start", test_start, time)
    val_at = _boundary("val_start", val_start, time) if val_start is not None else None
    dates = dates_only(time)
    if val_at is not None and val_at >= test_at:
        raise ConfigError(
            f"--val-start ({time_text(val_at, dates)}) must be before --test-start "
            f"({time_text(test_at, dates)})"
        )

    first, last = time[0], time[-1]
    for name, stamp in (("val_start", val_at), ("test_start", test_at)):
        flag = "--" + name.replace("_", "-")
        if stamp is not None and stamp <= first:
            raise DataError(
                f"{flag} {time_text(stamp, dates)} is not after the first timestamp "
                f"{time_text(first, dates)}; no rows would be left for training"
            )
        if stamp is not None and stamp > last:
            raise DataError(
                f"{flag} {time_text(stamp, dates)} is after the last timestamp "
                f"{time_text(last, dates)}; no rows would be left after it"
            )
    test_row = int(time.searchsorted(test_at, side="left"))
    val_row = int(time.searchsorted(val_at, side="left")) if val_at is not None else test_row
    return Split((0, val_row), (val_row, test_row), (test_row, n_rows))


def split_by_rows(n_rows: int, train_end: int, val_end: int, test_end: int | None = None) -> Split:
    """Split at fixed row numbers: train [0, train_end), val [train_end, val_end), test
    [val_end, test_end). `test_end=None` means the last row; rows after `test_end` are unused.
    """
    n_rows = check_int("n_rows", n_rows)
    train_end = check_int("train_end", train_end)
    val_end = check_int("val_end", val_end)
    test_end = n_rows if test_end is None else check_int("test_end", test_end)
    if not train_end <= val_end < test_end:
        raise ConfigError(
            f"row boundaries must satisfy train_end <= val_end < test_end; "
            f"got {train_end}, {val_end}, {test_end}"
        )
    if test_end > n_rows:
        raise DataError(f"test_end is row {test_end} but the data has only {n_rows} rows")
    return Split((0, train_end), (train_end, val_end), (val_end, test_end))


def check_split(split: Split, lookback: int, horizon: int) -> None:
    """Raise DataError naming the first split that cannot hold a single window.

    Train windows lie wholly inside train: it needs lookback + horizon rows. Val (when not
    empty) and test windows take their inputs from the rows before the split, so each needs
    `horizon` rows of its own and `lookback` rows before its start.
    """
    lookback = check_int("lookback", lookback)
    horizon = check_int("horizon", horizon)
    hint = "use more data or smaller --horizon/--lookback"
    sizes = split.sizes()
    if sizes["train"] < lookback + horizon:
        raise DataError(
            f"the train split has {sizes['train']} rows but lookback {lookback} + horizon "
            f"{horizon} needs at least {lookback + horizon}; {hint}"
        )
    for name, (start, _end) in (("val", split.val), ("test", split.test)):
        if name == "val" and sizes["val"] == 0:
            continue
        if sizes[name] < horizon:
            raise DataError(
                f"the {name} split has {sizes[name]} rows but horizon {horizon} needs at "
                f"least {horizon}; {hint}"
            )
        if start < lookback:
            raise DataError(
                f"the {name} split has only {start} rows before it but lookback {lookback} "
                f"needs {lookback} for its first window; {hint}"
            )


def window_starts(
    first_input_row: int,
    target_start: int,
    target_end: int,
    lookback: int,
    horizon: int,
    stride: int = 1,
) -> np.ndarray:
    """Every window start s (int64, ascending, every `stride`-th) such that the inputs
    [s, s + L) begin at or after `first_input_row` and the targets [s + L, s + L + H) lie
    within [target_start, target_end).

    Train: `window_starts(train[0], train[0], train[1], L, H)`. Val/test:
    `window_starts(0, test[0], test[1], L, H)`, whose inputs reach back before the boundary.
    """
    first_input_row = check_int("first_input_row", first_input_row, minimum=0)
    target_start = check_int("target_start", target_start, minimum=0)
    target_end = check_int("target_end", target_end, minimum=0)
    lookback = check_int("lookback", lookback)
    horizon = check_int("horizon", horizon)
    stride = check_int("stride", stride)
    low = max(first_input_row, target_start - lookback)
    high = target_end - lookback - horizon  # last allowed start, inclusive
    if high < low:
        return np.empty(0, dtype=np.int64)
    return np.arange(low, high + 1, stride, dtype=np.int64)


PARTS = ("train", "val", "test")


def split_windows(
    split: Split, part: str, lookback: int, horizon: int, stride: int = 1
) -> np.ndarray:
    """Every window start of `part` ("train", "val" or "test") of `split`: train windows lie
    wholly inside train; val and test windows take their inputs from the rows before their
    boundary (from row 0 on), so every row of those parts is forecast."""
    if part not in PARTS:
        raise DataError(f"unknown split '{part}'; allowed: {', '.join(PARTS)}")
    start, end = getattr(split, part)
    first_input = start if part == "train" else 0
    return window_starts(first_input, start, end, lookback, horizon, stride)
