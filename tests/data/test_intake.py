"""Honest intake (issue 16): inputs that used to go silently wrong either read correctly or
fail with one line naming the file, the column and the row."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmcast.data.load import read_table_digest
from lstmcast.data.panel import prepare_panel
from lstmcast.data.validate import index_columns, prepare
from lstmcast.errors import ConfigError, DataError


def read(tmp_path: Path, name: str, content: bytes) -> pd.DataFrame:
    """Write `content` to tmp_path/name and read it back, checking the digest."""
    path = tmp_path / name
    path.write_bytes(content)
    frame, digest = read_table_digest(path)
    assert digest == hashlib.sha256(content).hexdigest()  # every byte, exactly once
    return frame


# ------------------------------------------------------------------ 1. index columns
def test_an_r_export_rownames_column_is_not_a_target(tmp_path: Path) -> None:
    frame = read(
        tmp_path,
        "r.csv",
        b'"rownames","date","load"\n"1","2020-01-01",3.2\n"2","2020-01-02",4.1\n'
        b'"3","2020-01-03",5\n',
    )
    assert index_columns(frame) == ["rownames"]
    series = prepare(frame, source="r.csv")
    assert series.targets == ("load",) and series.time_col == "date"
    assert prepare(frame, targets=["rownames", "load"]).targets == ("rownames", "load")


def test_a_pandas_unnamed_index_without_a_time_column_trains_on_row_order(
    tmp_path: Path,
) -> None:
    frame = read(tmp_path, "p.csv", b",y,x\n0,3.5,1\n1,4.5,3\n2,5.0,2\n3,1.0,0\n")
    assert index_columns(frame) == ["Unnamed: 0"]
    series = prepare(frame)
    assert series.targets == ("y", "x") and series.time is None


def test_which_columns_count_as_row_numbers() -> None:
    frame = pd.DataFrame(
        {
            "": [1, 2, 3, 4],  # unnamed, 1..N
            "Unnamed: 3": [0, 1, 2, 3],  # unnamed, 0..N-1
            "Unnamed: 4": [5, 1, 2, 3],  # unnamed but not counting rows: data
            "index": [10, 12, 15, 17],  # named: distinct whole numbers (a filtered frame)
            "Index": [1.5, 2.5, 3.5, 4.5],  # a price index, not row numbers
            "y": [1.0, 2.0, 4.0, 3.0],
        }
    )
    assert index_columns(frame) == ["", "Unnamed: 3", "index"]
    assert prepare(frame).targets == ("Unnamed: 4", "Index", "y")
    with pytest.raises(DataError, match=r"no target columns.*row-number columns skipped: ind"):
        prepare(pd.DataFrame({"index": [0, 1, 2], "site": ["a", "b", "c"]}))


def test_a_long_table_skips_its_index_column(tmp_path: Path) -> None:
    frame = read(
        tmp_path,
        "long.csv",
        b",id,time,y\n0,A,2020-01-01,1\n1,A,2020-01-02,2\n2,B,2020-01-01,5\n3,B,2020-01-02,7\n",
    )
    assert prepare_panel(frame, id_col="id").targets == ("y",)


# ------------------------------------------------------ 2. quarter, month and week labels
@pytest.mark.parametrize(
    ("labels", "first", "freq"),
    [
        (["1970 Q1", "1970 Q2", "1970 Q3", "1970 Q4"], "1970-01-01", "QS"),
        (["1970Q1", "1970Q2", "1970Q3", "1970Q4"], "1970-01-01", "QS"),
        (["1970-Q3", "1970-Q4", "1971-Q1", "1971-Q2"], "1970-07-01", "QS"),
        (["Q1 1970", "Q2 1970", "Q3 1970", "Q4 1970"], "1970-01-01", "QS"),
        (["2020-03", "2020-04", "2020-05", "2020-06"], "2020-03-01", "MS"),
        (["2020-W05", "2020-W06", "2020-W07", "2020-W08"], "2020-01-27", "W-MON"),
        (["2020W52", "2020W53", "2021W01", "2021W02"], "2020-12-21", "W-MON"),
    ],
)
def test_period_labels_are_found_and_parsed(
    tmp_path: Path, labels: list[str], first: str, freq: str
) -> None:
    body = "".join(f"{label},{v}\n" for label, v in zip(labels, [1, 3, 2, 5], strict=True))
    frame = read(tmp_path, "q.csv", ("period,y\n" + body).encode())
    series = prepare(frame)
    assert series.time_col == "period"  # found by content: 'period' is not a time name
    assert series.time is not None and series.time[0] == pd.Timestamp(first)
    assert series.freq is not None and series.freq.startswith(freq)


def test_an_impossible_week_is_named_with_its_row() -> None:
    frame = pd.DataFrame({"week": ["2021-W51", "2021-W52", "2021-W53"], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=r"'week' row 3 holds '2021-W53', which is not a date"):
        prepare(frame, time_col="week")


# ------------------------------------------------------- 3. delimiter and decimal style
def test_a_semicolon_file_with_decimal_commas(tmp_path: Path) -> None:
    content = b"date;load;temp\n2020-01-01;1,5;10\n2020-01-02;2,25;11\n2020-01-03;-3,5;12\n"
    frame = read(tmp_path, "eu.csv", content)
    assert list(frame.columns) == ["date", "load", "temp"]
    series = prepare(frame)
    np.testing.assert_array_equal(series.values[:, 0], [1.5, 2.25, -3.5])
    gz = gzip.compress(content)
    assert read(tmp_path, "eu.csv.gz", gz)["load"].tolist() == [1.5, 2.25, -3.5]


def test_a_semicolon_file_with_decimal_points_and_grouped_thousands(tmp_path: Path) -> None:
    points = read(tmp_path, "a.csv", b"date;load\n2020-01-01;1.5\n2020-01-02;2.5\n")
    assert points["load"].tolist() == [1.5, 2.5]
    grouped = read(tmp_path, "b.csv", b"date;load\n2020-01-01;1.234,5\n2020-01-02;2,5\n")
    assert grouped["load"].tolist() == [1234.5, 2.5]


def test_a_tab_separated_csv(tmp_path: Path) -> None:
    frame = read(tmp_path, "t.csv", b"a\tb\n1\t2\n3\t4\n")
    assert list(frame.columns) == ["a", "b"]


def test_an_ambiguous_or_broken_delimiter_is_refused(tmp_path: Path) -> None:
    (tmp_path / "both.csv").write_bytes(b"a;b,c\n1;2,3\n4;5,6\n")
    with pytest.raises(DataError, match=r"both\.csv' looks both ','- and ';'-separated") as info:
        read_table_digest(tmp_path / "both.csv")
    assert "\n" not in str(info.value)
    (tmp_path / "ragged.csv").write_bytes(b"a;b\n1;2\n3;4;5\n")
    with pytest.raises(DataError, match=r"ragged\.csv' looks ';'-separated but could not be r"):
        read_table_digest(tmp_path / "ragged.csv")


# ----------------------------------------------- 4. thousands separators and percentages
def test_thousands_separators_and_percent_strings_are_numbers(tmp_path: Path) -> None:
    frame = read(
        tmp_path,
        "n.csv",
        b'date,sales,growth\n2020-01-01,"1,234",5.0%\n2020-01-02,"1,234,567.5",-2%\n'
        b"2020-01-03,999,0.5 %\n",
    )
    series = prepare(frame)
    assert series.targets == ("sales", "growth")  # never silently dropped
    np.testing.assert_array_equal(series.values[:, 0], np.float32([1234, 1234567.5, 999]))
    np.testing.assert_array_equal(series.values[:, 1], np.float32([5.0, -2.0, 0.5]))


def test_a_mostly_numeric_column_with_a_bad_cell_is_refused_by_name(tmp_path: Path) -> None:
    frame = read(
        tmp_path,
        "m.csv",
        b'date,sales,site\n2020-01-01,"1,234",a\n2020-01-02,"12,34",b\n2020-01-03,"2,000",c\n',
    )
    with pytest.raises(
        DataError, match=r"^m\.csv: column 'sales' row 2 holds '12,34', which is not a number"
    ):
        prepare(frame, source="m.csv")


# -------------------------------------------------------------------------- 5. NUL bytes
def test_nul_bytes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "nul.csv").write_bytes(b"date,y\n2020-01-01,1\n2020-01-02,2\x003\n")
    with pytest.raises(
        DataError, match=r"^data file '.*nul\.csv' contains NUL bytes at byte 32; it is not a te"
    ):
        read_table_digest(tmp_path / "nul.csv")
    (tmp_path / "wide.csv").write_bytes("a,b\n1,2\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"not a text CSV \(UTF-16\? save it as UTF-8\)$"):
        read_table_digest(tmp_path / "wide.csv")


# ------------------------------------------------------------------ 6. repeated timestamps
WIDE = b"date,y,x\n2020-01-01,1,10\n2020-01-02,2,20\n2020-01-02,4,\n2020-01-03,5,50\n"


@pytest.mark.parametrize(
    ("duplicates", "y", "x"),
    [
        ("first", [1, 2, 5], [10, 20, 50]),
        ("last", [1, 4, 5], [10, 10, 50]),  # the last row as it is: x empty, filled
        ("mean", [1, 3, 5], [10, 20, 50]),
    ],
)
def test_wide_repeated_timestamps(
    tmp_path: Path, duplicates: str, y: list[float], x: list[float]
) -> None:
    frame = read(tmp_path, "w.csv", WIDE)
    series = prepare(frame, duplicates=duplicates, fill="ffill")
    assert series.time is not None and series.time.is_unique and len(series) == 3
    np.testing.assert_array_equal(series.values[:, 0], y)
    np.testing.assert_array_equal(series.values[:, 1], x)  # the mean skips an empty cell
    panel = prepare_panel(frame, id_col=None, duplicates=duplicates, fill="ffill")
    np.testing.assert_array_equal(panel.values[:, 0], y)


def test_wide_repeated_timestamps_are_an_error_by_default(tmp_path: Path) -> None:
    frame = read(tmp_path, "w.csv", WIDE.replace(b"2020-01-03", b"2020-01-02"))
    with pytest.raises(
        DataError,
        match=r"^w\.csv: column 'date' has a duplicate timestamp 2020-01-02 at rows "
        r"2, 3 and 4; each row needs its own time \(2 rows repeat an earlier timestamp; use "
        r"--duplicates first\|last\|mean to keep one\)$",
    ):
        prepare(frame, source="w.csv", fill="ffill")
    with pytest.raises(ConfigError, match=r"'duplicates' parameter must be one of 'error'"):
        prepare(frame, duplicates="max")


def test_an_empty_cell_after_merging_names_its_source_row(tmp_path: Path) -> None:
    frame = read(tmp_path, "w.csv", WIDE.replace(b"2020-01-03,5,50", b"2020-01-03,5,"))
    with pytest.raises(DataError, match=r"column 'x' row 4 is empty"):
        prepare(frame, duplicates="first")


LONG = (
    b"id,time,y,region\nA,2020-01-01,1,n\nA,2020-01-02,2,n\nB,2020-01-01,5,s\n"
    b"A,2020-01-02,4,n\nB,2020-01-02,6,s\nA,2020-01-03,7,n\nB,2020-01-03,9,s\n"
)


@pytest.mark.parametrize(("duplicates", "a_second"), [("first", 2.0), ("last", 4.0), ("mean", 3.0)])
def test_panel_repeated_pairs(tmp_path: Path, duplicates: str, a_second: float) -> None:
    frame = read(tmp_path, "p.csv", LONG)
    panel = prepare_panel(frame, id_col="id", static=["region"], duplicates=duplicates)
    assert panel.ids == ("A", "B") and panel.bounds.tolist() == [0, 3, 6]
    np.testing.assert_array_equal(panel.values[:, 0], [1, a_second, 7, 5, 6, 9])
    assert panel.time is not None
    for i in range(panel.n_series):
        stamps = panel.time[panel.rows(i)]
        assert stamps.is_unique and stamps.is_monotonic_increasing
    assert panel.static.categories["region"] == ("n", "s")


def test_panel_repeated_pairs_are_an_error_by_default(tmp_path: Path) -> None:
    frame = read(tmp_path, "p.csv", LONG)
    with pytest.raises(
        DataError,
        match=r"^p\.csv: series 'A' has the timestamp 2020-01-02 twice \(rows 2 and "
        r"4\); each \(id, time\) pair must be unique \(1 row repeats a pair; use --duplicates "
        r"first\|last\|mean to keep one\)$",
    ):
        prepare_panel(frame, id_col="id", source="p.csv")
