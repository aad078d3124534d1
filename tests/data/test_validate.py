import numpy as np
import pandas as pd
import pytest

from lstmcast.data import TimeSeries, prepare
from lstmcast.errors import ConfigError, DataError


def _frame(**overrides: object) -> pd.DataFrame:
    columns: dict[str, object] = {
        "Date": [f"2021-01-0{d}" for d in range(1, 7)],
        "load": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "temp": ["10", "12", "11", "13", "12", "14"],  # numeric-looking text
        "site": ["a", "b", "a", "b", "a", "b"],
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


def test_defaults() -> None:
    series = prepare(_frame(), source="x.csv")
    assert series.time_col == "Date"
    assert series.targets == ("load", "temp")  # the text column 'site' is skipped
    assert series.covariates == ()
    assert series.values.dtype == np.float32 and series.values.flags.c_contiguous
    assert series.values.shape == (6, 2) == (len(series), series.n_features)
    assert series.values[2].tolist() == [3.0, 11.0]
    assert series.freq == "D"
    assert isinstance(series.time, pd.DatetimeIndex) and series.time.name == "Date"


def test_targets_come_before_covariates() -> None:
    series = prepare(_frame(), targets="temp", covariates=["load"])
    assert series.columns == ("temp", "load") and series.n_targets == 1
    np.testing.assert_array_equal(series.values[:, 1], np.arange(1, 7, dtype=np.float32))
    covs_only = prepare(_frame(), covariates=["temp"])
    assert covs_only.targets == ("load",) and covs_only.covariates == ("temp",)


def test_time_column_detection() -> None:
    frame = _frame().rename(columns={"Date": "when"})
    assert prepare(frame).time_col == "when"  # text that parses wholly as dates
    assert prepare(frame.drop(columns="when")).time is None
    assert prepare(frame, time_col="when").time_col == "when"
    as_datetime = frame.assign(when=pd.to_datetime(frame["when"]))
    assert prepare(as_datetime).time_col == "when"
    indexed = as_datetime.set_index("when")
    assert prepare(indexed).time_col == "when"


def test_future_index() -> None:
    series = prepare(_frame())
    future = series.future_index(2)
    assert isinstance(future, pd.DatetimeIndex)
    assert list(future) == [pd.Timestamp("2021-01-07"), pd.Timestamp("2021-01-08")]
    irregular = _frame(
        Date=["2021-01-01", "2021-01-02", "2021-01-04", "2021-01-05", "2021-01-07", "2021-01-08"]
    )
    uneven = prepare(irregular)
    assert uneven.freq is None  # weekends present, weekdays missing: no known calendar
    assert uneven.future_index(2) == range(1, 3)  # steps numbered, and the note says why
    assert "no regular frequency or trading calendar" in uneven.irregular_note
    assert prepare(_frame().drop(columns="Date")).future_index(3) == range(6, 9)
    with pytest.raises(ConfigError, match=r"'steps' parameter must be an int >= 1\. Got 0"):
        series.future_index(0)


def test_fill_ffill_and_interpolate() -> None:
    gappy = _frame(load=[np.nan, 2.0, np.nan, 4.0, 5.0, np.nan])
    ffilled = prepare(gappy, fill="ffill").values[:, 0]
    np.testing.assert_array_equal(ffilled, [2.0, 2.0, 2.0, 4.0, 5.0, 5.0])
    interpolated = prepare(gappy, fill="interpolate").values[:, 0]
    np.testing.assert_array_equal(interpolated, [2.0, 2.0, 3.0, 4.0, 5.0, 5.0])
    empty_text = _frame(temp=["10", "", "11", "13", None, "14"])
    np.testing.assert_array_equal(
        prepare(empty_text, fill="interpolate").values[:, 1], [10, 10.5, 11, 13, 13.5, 14]
    )


@pytest.mark.parametrize(
    ("overrides", "kwargs", "message"),
    [
        ({}, {"targets": ["lod"]}, r"unknown column 'lod' in --targets; available: Date, load,"),
        ({}, {"covariates": "x"}, r"unknown column 'x' in --covariates; available:"),
        ({}, {"time_col": "day"}, r"unknown column 'day' in --time-col; available: Date, load"),
        ({}, {"targets": ["load", "load"]}, r"column 'load' appears twice in --targets"),
        ({}, {"targets": ["load"], "covariates": ["load"]}, r"column 'load' is in both --target"),
        (
            {},
            {"time_col": "Date", "targets": ["Date"]},
            r"column 'Date' is the time column; it can",
        ),
        ({}, {"targets": ["site"]}, r"column 'site' row 1 holds 'a', which is not a number"),
        ({"temp": ["1", "2", "3", "x4", "5", "6"]}, {}, r"column 'temp' row 4 holds 'x4', which"),
        ({"load": [1, 2, np.inf, 4, 5, 6]}, {}, r"column 'load' row 3 holds inf; values must be f"),
        ({"load": [np.nan] * 6}, {"fill": "ffill"}, r"column 'load' has no values \(all 6 rows e"),
        ({"load": [1, 2, np.nan, 4, np.nan, 6]}, {}, r"column 'load' row 3 is empty \(2 empty cel"),
        ({"load": [3.0] * 6}, {}, r"column 'load' is constant \(every value 3\.0\); a constant"),
        ({"load": [3, np.nan, 3, 3, 3, 3]}, {"fill": "ffill"}, r"column 'load' is constant"),
        ({"load": [1e39] + [1.0] * 5}, {}, r"column 'load' row 1 holds 1e\+39, too large for flo"),
    ],
)
def test_column_errors(
    overrides: dict[str, object], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(DataError, match=r"^x\.csv: " + message):
        prepare(_frame(**overrides), source="x.csv", **kwargs)  # type: ignore[arg-type]


def test_nan_error_suggests_a_fill() -> None:
    with pytest.raises(DataError, match=r"use --fill ffill or --fill interpolate$"):
        prepare(_frame(temp=["10", "12", None, "13", "12", "14"]))


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (["2021-01-01", "2021-01-02", "soon", "x", "y", "z"], r"'Date' row 3 holds 'soon', whic"),
        (["2021-01-01", None, "2021-01-03", "4", "5", "6"], r"'Date' row 2 is empty; every row"),
        (
            ["2021-01-01", "2021-01-02", "2021-01-03", "2021-01-02", "2021-01-05", "2021-01-06"],
            r"'Date' has a duplicate timestamp 2021-01-02 at rows 2 and 4; each row",
        ),
        (
            ["2021-01-01", "2021-01-02", "2021-01-04", "2021-01-03", "2021-01-05", "2021-01-06"],
            r"'Date' is not in increasing order: row 4 \(2021-01-03\) comes after row "
            r"3 \(2021-01-04\); sort",
        ),
        (  # hourly: the midnight row keeps its time, like the rows around it
            [
                "2021-01-01 22:00",
                "2021-01-01 23:00",
                "2021-01-02",
                "2021-01-02",
                "2021-01-02 02:00",
                "2021-01-02 03:00",
            ],
            r"'Date' has a duplicate timestamp 2021-01-02 00:00:00 at rows 3 and 4; each row",
        ),
    ],
)
def test_time_errors(dates: list[str | None], message: str) -> None:
    with pytest.raises(DataError, match=r"^data: column " + message):
        prepare(_frame(Date=dates))


def test_a_long_table_read_as_wide_is_pointed_to_id_col() -> None:
    # two series' rows under one time column: --duplicates would merge them into one series
    long = _frame(
        Date=["2021-01-01", "2021-01-01", "2021-01-02", "2021-01-02"] + ["2021-01-03"] * 2
    )
    with pytest.raises(DataError, match=r"one per 'site': give --id-col site, or use --dupl"):
        prepare(long)
    # a label that does not tell the repeated rows apart ('site' is "b" twice on 2021-01-02)
    # and numbers written as text ('temp', unique but numeric): the --duplicates advice alone
    same = _frame(
        Date=["2021-01-01", "2021-01-02", "2021-01-02", "2021-01-04", "2021-01-05", "2021-01-06"],
        site=["a", "b", "b", "a", "b", "a"],
        temp=["1", "2", "3", "4", "5", "6"],
    )
    with pytest.raises(DataError, match=r"an earlier timestamp; use --duplicates first") as err:
        prepare(same)
    assert "--id-col" not in str(err.value)


def test_numeric_time_column_is_refused() -> None:
    with pytest.raises(DataError, match=r"column 'time' holds int64 values \(row 1: 0\), not dat"):
        prepare(pd.DataFrame({"time": range(4), "y": [1.0, 2.0, 4.0, 3.0]}))


def test_mixed_formats_and_utc_offsets() -> None:
    mixed = _frame(
        Date=[
            "2021-01-01",
            "2021-01-02 06:00",
            "2021-01-03",
            "2021-01-04",
            "2021-01-05",
            "2021-01-06",
        ]
    )
    assert prepare(mixed).time is not None
    dst = pd.DataFrame(
        {
            "ts": ["2021-03-28 01:00+01:00", "2021-03-28 03:00+02:00", "2021-03-28 04:00+02:00"],
            "y": [1.0, 2.0, 4.0],
        }
    )
    time = prepare(dst).time
    assert time is not None and str(time.tz) == "UTC" and time[1] - time[0] == pd.Timedelta("1h")


def test_other_errors() -> None:
    with pytest.raises(ConfigError, match=r"'fill' parameter must be one of 'error', 'ffill', 'in"):
        prepare(_frame(), fill="bfill")
    with pytest.raises(DataError, match=r"^data: has 1 row\(s\) of data; forecasting needs at le"):
        prepare(_frame().iloc[:1])
    with pytest.raises(DataError, match=r"no target columns; found no numeric column"):
        prepare(_frame()[["Date", "site"]])
    with pytest.raises(DataError, match=r"column 'a' appears twice in the table's header"):
        prepare(pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"]))


def test_timeseries_checks_its_shape() -> None:
    series = TimeSeries(np.zeros((3, 2), dtype=np.float64), ("a",), ("b",))
    assert series.values.dtype == np.float32
    with pytest.raises(DataError, match=r"do not match 1 targets \+ 0 covariates"):
        TimeSeries(np.zeros((3, 2)), ("a",), ())
