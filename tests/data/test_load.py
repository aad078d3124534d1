from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmcast.data import read_table
from lstmcast.errors import DataError

FRAME = pd.DataFrame(
    {
        "date": pd.date_range("2020-01-01", periods=5, freq="h").astype(str),
        "load": [1.5, 2.0, 2.5, 3.0, 2.0],
        "temp": [10, 11, 12, 13, 15],
    }
)


@pytest.mark.parametrize("name", ["data.csv", "data.csv.gz", "data.txt"])
def test_csv_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    FRAME.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_table(path), FRAME, check_dtype=False)
    pd.testing.assert_frame_equal(read_table(str(path)), FRAME, check_dtype=False)


def test_txt_sniffs_the_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    FRAME.to_csv(path, index=False, sep=";")
    assert list(read_table(path).columns) == ["date", "load", "temp"]


@pytest.mark.parametrize("name", ["data.parquet", "data.pq"])
def test_parquet_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    FRAME.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(read_table(path), FRAME, check_dtype=False)


def test_parquet_datetime_index_becomes_a_column(tmp_path: Path) -> None:
    indexed = FRAME.assign(date=pd.to_datetime(FRAME["date"])).set_index("date")
    indexed.to_parquet(tmp_path / "data.parquet")
    table = read_table(tmp_path / "data.parquet")
    assert list(table.columns) == ["date", "load", "temp"]
    assert isinstance(table.index, pd.RangeIndex)


def test_dataframe_is_passed_through_shallowly() -> None:
    table = read_table(FRAME)
    assert table is not FRAME
    assert np.shares_memory(table["load"].to_numpy(), FRAME["load"].to_numpy())
    table["extra"] = 1  # adding a column does not touch the caller's frame
    assert "extra" not in FRAME.columns


def test_dataframe_datetime_index() -> None:
    indexed = FRAME.drop(columns="date").set_index(pd.date_range("2020", periods=5, freq="D"))
    assert list(read_table(indexed).columns) == ["time", "load", "temp"]
    named = indexed.rename_axis("stamp")
    assert read_table(named).columns[0] == "stamp"
    clash = indexed.rename_axis("load")
    with pytest.raises(DataError, match=r"DatetimeIndex named 'load' and also a column 'load'"):
        read_table(clash)


def test_missing_file() -> None:
    with pytest.raises(DataError, match=r"^data file 'x\.csv' does not exist$"):
        read_table("x.csv")


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("a\n1\n")
    with pytest.raises(
        DataError, match=r"unsupported extension '\.xlsx'; allowed: \.csv, \.csv\.gz, \.txt, \.parq"
    ):
        read_table(path)
    with pytest.raises(DataError, match=r"is a directory"):
        read_table(tmp_path)


def test_parse_failures_are_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(DataError, match=r"'.*broken\.csv' could not be read as CSV: .*") as info:
        read_table(broken)
    assert "\n" not in str(info.value)
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet at all")
    with pytest.raises(DataError, match=r"fake\.parquet' could not be read as Parquet: "):
        read_table(fake)


def test_empty_tables(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv' is empty"):
        read_table(empty)
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(DataError, match=r"header\.csv' has no data rows"):
        read_table(header)
    with pytest.raises(DataError, match=r"the DataFrame is empty \(0 rows"):
        read_table(pd.DataFrame({"a": []}))
