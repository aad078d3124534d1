from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmcast.data.calendar import (
    FEATURES,
    calendar_features,
    calendar_spec,
    check_holidays,
    dates_only,
    time_text,
)
from lstmcast.errors import ConfigError, DataError


@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("15min", ("hour", "dayofweek")),
        ("min", ("hour", "dayofweek")),
        ("T", ("hour", "dayofweek")),
        ("s", ("hour", "dayofweek")),
        ("h", ("hour", "dayofweek", "month")),
        ("H", ("hour", "dayofweek", "month")),
        ("6h", ("hour", "dayofweek", "month")),
        ("D", ("dayofweek", "month")),
        ("B", ("dayofweek", "month")),
        ("C", ("dayofweek", "month")),
        ("W-SUN", ("weekofyear",)),
        ("7D", ("weekofyear",)),
        ("MS", ("month",)),
        ("ME", ("month",)),
        ("M", ("month",)),
        ("QS-OCT", ("quarter",)),
        ("QE-DEC", ("quarter",)),
        ("YS", ()),
        ("YE", ()),
        ("A", ()),
        (None, ()),
        ("not-a-freq", ()),
        ("0D", ()),
    ],
)
def test_auto_picks_the_features_that_vary_at_the_frequency(
    freq: str | None, expected: tuple[str, ...]
) -> None:
    assert calendar_spec("auto", freq) == expected
    assert calendar_spec(" AUTO ", freq) == expected


@pytest.mark.parametrize("value", [None, "none", "None", "", (), []])
def test_none_gives_no_features(value: object) -> None:
    assert calendar_spec(value, "h") == ()  # type: ignore[arg-type]
    assert calendar_spec(value, "h", time_present=False) == ()  # type: ignore[arg-type]


def test_explicit_lists_keep_order_and_drop_duplicates() -> None:
    assert calendar_spec("hour, dayofweek,hour", "D") == ("hour", "dayofweek")
    assert calendar_spec(["month", "Quarter", "month"], None) == ("month", "quarter")
    assert calendar_spec(",".join(FEATURES), "h") == tuple(FEATURES)


@pytest.mark.parametrize(("value", "named"), [("hour,hours", "'hours'"), (["week"], "'week'")])
def test_unknown_feature_is_named_with_the_allowed_ones(value: object, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        calendar_spec(value, "h")  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("The 'calendar' option takes auto, none or a comma-separated list")
    assert message.endswith(f"got {named}")
    assert all(name in message for name in FEATURES)


def test_calendar_without_a_time_column_is_a_data_error() -> None:
    for value in ("auto", "hour", ["month"]):
        with pytest.raises(DataError, match=r"^--calendar needs a time column; the data has none$"):
            calendar_spec(value, None, time_present=False)


def _column(names: list[str], values: np.ndarray, name: str) -> np.ndarray:
    return values[:, names.index(name)]


def test_known_values() -> None:
    time = pd.DatetimeIndex(["2024-01-01 06:00", "2024-01-01 00:00", "2024-03-31 18:15"])
    names, values = calendar_features(time, list(FEATURES))
    assert names == [f"{f}_{part}" for f in FEATURES for part in ("sin", "cos")]
    assert values.dtype == np.float32 and values.shape == (3, 2 * len(FEATURES))
    np.testing.assert_allclose(_column(names, values, "hour_sin"), [1, 0, -1], atol=1e-6)
    np.testing.assert_allclose(_column(names, values, "hour_cos"), [0, 1, 0], atol=1e-6)
    # 2024-01-01 is a Monday (dayofweek 0), day 1 of month/year, ISO week 1, month 1, Q1.
    for feature in ("dayofweek", "dayofmonth", "dayofyear", "weekofyear", "month", "quarter"):
        assert _column(names, values, f"{feature}_sin")[0] == pytest.approx(0, abs=1e-6)
        assert _column(names, values, f"{feature}_cos")[0] == pytest.approx(1)
    # 2024-03-31 is a Sunday (6) at minute 15, month index 2, quarter index 0.
    angle = {"dayofweek": 6 / 7, "minute": 15 / 60, "month": 2 / 12, "dayofmonth": 30 / 31}
    for feature, fraction in angle.items():
        expected = np.sin(2 * np.pi * fraction)
        assert _column(names, values, f"{feature}_sin")[2] == pytest.approx(expected, abs=1e-6)


def test_iso_week_and_leap_day_of_year() -> None:
    time = pd.DatetimeIndex(["2021-01-03", "2020-12-31", "2021-01-04"])  # ISO weeks 53, 53, 1
    _, values = calendar_features(time, ["weekofyear", "dayofyear"])
    week = np.arctan2(values[:, 0], values[:, 1]) % (2 * np.pi) * 53 / (2 * np.pi)
    np.testing.assert_allclose(week, [52, 52, 0], atol=1e-4)
    day = np.arctan2(values[:, 2], values[:, 3]) % (2 * np.pi) * 366 / (2 * np.pi)
    np.testing.assert_allclose(day, [2, 365, 3], atol=1e-3)


def test_no_features_gives_an_empty_array() -> None:
    names, values = calendar_features(pd.date_range("2024-01-01", periods=4, freq="D"), [])
    assert names == [] and values.shape == (4, 0) and values.dtype == np.float32


def test_a_slice_equals_the_same_rows_of_the_whole_index() -> None:
    """No leakage: each row's values depend only on its own timestamp."""
    time = pd.date_range("2023-12-20", periods=24 * 40, freq="h")
    features = list(FEATURES)
    _, whole = calendar_features(time, features, holidays="US")
    for start, stop in [(0, 1), (100, 350), (len(time) - 7, len(time))]:
        names, part = calendar_features(time[start:stop], features, holidays="US")
        np.testing.assert_array_equal(part, whole[start:stop])
    assert names[-1] == "holiday"
    shuffled = np.random.default_rng(0).permutation(len(time))
    _, reordered = calendar_features(time[shuffled], features, holidays="US")
    np.testing.assert_array_equal(reordered, whole[shuffled])


def test_us_holidays() -> None:
    time = pd.DatetimeIndex(["2024-07-04", "2024-12-25", "2024-07-05", "2025-01-01"])
    names, values = calendar_features(time, [], holidays="US")
    assert names == ["holiday"]
    np.testing.assert_array_equal(values[:, 0], [1, 1, 0, 1])


def test_every_hour_of_a_holiday_is_flagged() -> None:
    time = pd.date_range("2024-07-03", periods=72, freq="h")
    names, values = calendar_features(time, ["hour"], holidays="US")
    flags = values[:, names.index("holiday")]
    np.testing.assert_array_equal(flags, np.repeat([0.0, 1.0, 0.0], 24))


def test_subdivision_holidays() -> None:
    time = pd.DatetimeIndex(["2024-03-31", "2024-11-29"])  # Cesar Chavez Day, day after Thanksg.
    _, california = calendar_features(time, [], holidays="US-CA")
    _, national = calendar_features(time, [], holidays="US")
    np.testing.assert_array_equal(california[:, 0], [1, 1])
    np.testing.assert_array_equal(national[:, 0], [0, 0])


def test_tz_aware_index_uses_local_time() -> None:
    utc = pd.date_range("2024-07-04 02:00", periods=4, freq="h", tz="UTC")
    local = utc.tz_convert("America/New_York")  # 2024-07-03 22:00 .. 2024-07-04 01:00 local
    names, values = calendar_features(local, ["hour", "dayofweek"], holidays="US")
    _, naive = calendar_features(local.tz_localize(None), ["hour", "dayofweek"], holidays="US")
    np.testing.assert_array_equal(values, naive)
    np.testing.assert_array_equal(values[:, names.index("holiday")], [0, 0, 1, 1])
    assert _column(names, values, "hour_sin")[2] == pytest.approx(0, abs=1e-6)


def test_two_million_hourly_rows() -> None:
    time = pd.date_range("2000-01-01", periods=2_000_000, freq="h")
    names, values = calendar_features(time, ["hour", "dayofweek", "month"], holidays="DE")
    assert values.shape == (2_000_000, 7) and len(names) == 7
    assert 0 < values[:, -1].mean() < 0.1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("  ", None), ("US", "US"), ("us", "US"), ("US-CA", "US-CA"),
     ("gb-eng", "GB-ENG"), ("DE", "DE")],
)  # fmt: skip
def test_check_holidays_accepts(value: str | None, expected: str | None) -> None:
    assert check_holidays(value) == expected


@pytest.mark.parametrize("value", ["XX", "US-ZZ", "-CA", "US-", "UNITED STATES"])
def test_check_holidays_rejects_in_one_line(value: str) -> None:
    expected = (
        "The 'holidays' option takes a country code such as US, GB, DE (optionally with a "
        f"subdivision, US-CA); got {value!r}"
    )
    with pytest.raises(ConfigError) as caught:
        check_holidays(value)
    assert str(caught.value) == expected
    with pytest.raises(ConfigError):
        calendar_features(pd.DatetimeIndex(["2024-01-01"]), [], holidays=value)


def test_bad_inputs_to_calendar_features() -> None:
    with pytest.raises(ConfigError, match=r"got 'hours'$"):
        calendar_features(pd.DatetimeIndex(["2024-01-01"]), ["hours"])
    with pytest.raises(DataError, match="row 1 has none"):
        calendar_features(pd.DatetimeIndex(["2024-01-01", None]), ["hour"])


_timestamps = st.lists(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)),
    min_size=1,
    max_size=50,
)


@settings(max_examples=50, deadline=None)
@given(stamps=_timestamps)
def test_every_encoding_lies_on_the_unit_circle(stamps: list[datetime]) -> None:
    names, values = calendar_features(pd.DatetimeIndex(stamps), list(FEATURES))
    assert np.isfinite(values).all()
    assert (np.abs(values) <= 1).all()
    radius = values[:, 0::2] ** 2 + values[:, 1::2] ** 2
    np.testing.assert_allclose(radius, 1, atol=1e-5)
    assert names[0::2] == [f"{f}_sin" for f in FEATURES]


def test_auto_keeps_only_cycles_the_training_rows_cover_twice():
    # hourly data: hour (1 day), day of week (7 days) and month (a year) vary
    assert calendar_spec("auto", "h", span_days=None) == ("hour", "dayofweek", "month")
    # 420 days of training rows: the yearly cycle is seen once, so month is left out
    assert calendar_spec("auto", "h", span_days=420) == ("hour", "dayofweek")
    assert calendar_spec("auto", "h", span_days=800) == ("hour", "dayofweek", "month")
    assert calendar_spec("auto", "h", span_days=10) == ("hour",)
    # an explicit list is what the user asked for
    assert calendar_spec("month", "h", span_days=10) == ("month",)


def test_daily_data_without_weekends_and_holidays_is_trading_days():
    from lstmcast.data.calendar import check_exchange, is_business_daily, trading_days_after

    days = pd.bdate_range("2024-06-03", "2024-07-31")
    trading = days[days != pd.Timestamp("2024-07-04")]  # the NYSE closed on Independence Day
    assert is_business_daily(trading)
    assert not is_business_daily(pd.date_range("2024-06-03", periods=40, freq="D"))  # weekends
    assert not is_business_daily(trading[::3])  # most weekdays missing: not a calendar
    # after Wednesday 2024-07-03: Thursday the 4th is a holiday on XNYS, a weekday otherwise
    plain = trading_days_after(pd.Timestamp("2024-07-03"), 3, None)
    assert list(plain.day) == [4, 5, 8]
    nyse = trading_days_after(pd.Timestamp("2024-07-03"), 3, "XNYS")
    assert list(nyse.day) == [5, 8, 9]
    assert check_exchange("xnys") == "XNYS"
    with pytest.raises(ConfigError, match="'exchange' option takes a market code"):
        check_exchange("NOPE")


def test_times_at_midnight_print_as_dates_and_others_keep_their_time() -> None:
    daily = pd.date_range("2024-03-01", periods=3, freq="D", tz="America/New_York")
    hourly = pd.date_range("2024-03-01", periods=30, freq="h")
    assert dates_only(daily) and not dates_only(hourly)
    assert time_text(daily[1], dates_only(daily)) == "2024-03-02"
    # midnight in an hourly index keeps its time, so it reads like the rows around it
    assert time_text(hourly[24], dates_only(hourly)) == "2024-03-02 00:00:00"
    assert time_text(hourly[25], dates_only(hourly)) == "2024-03-02 01:00:00"
    assert time_text(pd.Timestamp("2024-03-02")) == "2024-03-02"  # alone: by its own time
    assert time_text(pd.Timestamp("2024-03-02").value) == "2024-03-02"  # int64 ns, as memmap
    # local midnight, not UTC's: 00:00 in New York is 05:00 UTC
    assert dates_only(daily.tz_convert("UTC").tz_convert("America/New_York"))
    assert not dates_only(daily.tz_convert("UTC"))
