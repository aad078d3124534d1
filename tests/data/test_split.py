import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstmcast.data import Split, check_split, split_by_fraction, split_by_rows, split_by_time
from lstmcast.errors import ConfigError, DataError


def _assert_chronological(split: Split, n_rows: int) -> None:
    assert split.train[0] == 0
    assert split.train[1] == split.val[0] and split.val[1] == split.test[0]
    assert split.test[1] == n_rows


def test_fraction_counts_follow_the_benchmark_protocol() -> None:
    split = split_by_fraction(7588, val_fraction=0.1, test_fraction=0.2)  # exchange_rate
    assert split.sizes() == {"train": int(7588 * 0.7), "val": 760, "test": int(7588 * 0.2)}
    _assert_chronological(split, 7588)
    assert split_by_fraction(100, 0.1, 0.29).sizes() == {"train": 61, "val": 10, "test": 29}


def test_fraction_without_val() -> None:
    split = split_by_fraction(11, val_fraction=0.0, test_fraction=0.25)
    assert split.sizes() == {"train": 9, "val": 0, "test": 2}


@given(n_rows=st.integers(1, 10_000), val=st.floats(0, 0.45), test=st.floats(0.01, 0.45))
def test_fraction_covers_every_row(n_rows: int, val: float, test: float) -> None:
    split = split_by_fraction(n_rows, val, test)
    _assert_chronological(split, n_rows)
    assert min(split.sizes().values()) >= 0
    assert split.sizes()["test"] == int(n_rows * test + 1e-9)


@pytest.mark.parametrize(
    ("val", "test", "message"),
    [
        (0.1, 0.0, r"'test_fraction' parameter must be a number in \(0, 1\)\. Got 0\.0"),
        (-0.1, 0.2, r"'val_fraction' parameter must be a number in \[0, 1\)\. Got -0\.1"),
        (0.5, 0.5, r"val_fraction \+ test_fraction must be below 1; .*0\.5 \+ 0\.5 = 1"),
        (0.1, "0.2", r"'test_fraction' .* Got '0\.2' instead"),
    ],
)
def test_fraction_validation(val: object, test: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("below 1; ", "below 1 .*")):
        split_by_fraction(100, val, test)  # type: ignore[arg-type]


def test_split_by_rows_benchmark_protocol() -> None:
    split = split_by_rows(17420, 8640, 11520, 14400)
    assert (split.train, split.val, split.test) == ((0, 8640), (8640, 11520), (11520, 14400))
    assert split_by_rows(100, 70, 80).test == (80, 100)
    with pytest.raises(DataError, match=r"test_end is row 120 but the data has only 100 rows"):
        split_by_rows(100, 70, 80, 120)
    with pytest.raises(ConfigError, match=r"train_end <= val_end < test_end; got 80, 70, 100"):
        split_by_rows(100, 80, 70)


def test_split_rejects_gaps() -> None:
    with pytest.raises(ConfigError, match=r"contiguous"):
        Split((0, 5), (6, 8), (8, 10))


TIME = pd.date_range("2021-01-01", periods=10, freq="D")


def test_split_by_time_first_row_at_or_after_boundary() -> None:
    split = split_by_time(TIME, "2021-01-06", "2021-01-08 12:00")
    assert (split.train, split.val, split.test) == ((0, 5), (5, 8), (8, 10))
    assert split_by_time(TIME, None, pd.Timestamp("2021-01-09")).val == (8, 8)


def test_split_by_time_time_zones() -> None:
    aware = TIME.tz_localize("Europe/Berlin")
    assert split_by_time(aware, None, "2021-01-09").test == (8, 10)
    with pytest.raises(DataError, match=r"--test-start .* has a time zone"):
        split_by_time(TIME, None, "2021-01-09T00:00+01:00")


@pytest.mark.parametrize(
    ("val", "test", "error", "message"),
    [
        (None, "not a date", ConfigError, r"'test_start' parameter must be a date/time .*'not a"),
        ("2021-01-08", "2021-01-05", ConfigError, r"--val-start .* must be before --test-start"),
        (None, "2020-12-01", DataError, r"--test-start 2020-12-01 is not after the first"),
        (None, "2021-02-01", DataError, r"--test-start 2021-02-01 .* after the last timestamp"),
    ],
)
def test_split_by_time_errors(val: str | None, test: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        split_by_time(TIME, val, test)


def test_split_by_time_needs_a_time_column() -> None:
    with pytest.raises(DataError, match=r"needs a time column"):
        split_by_time(None, None, "2021-01-01")


def test_check_split_names_the_split() -> None:
    check_split(Split((0, 10), (10, 15), (15, 20)), lookback=5, horizon=5)
    check_split(Split((0, 10), (10, 10), (10, 15)), lookback=5, horizon=5)  # empty val is fine
    with pytest.raises(DataError, match=r"the train split has 8 rows but lookback 5 \+ horizon"):
        check_split(Split((0, 8), (8, 15), (15, 20)), lookback=5, horizon=5)
    with pytest.raises(
        DataError, match=r"the test split has 3 rows but horizon 5 needs at least 5; use more data"
    ):
        check_split(Split((0, 12), (12, 17), (17, 20)), lookback=5, horizon=5)
    with pytest.raises(DataError, match=r"the val split has 2 rows but horizon 3 needs at least 3"):
        check_split(Split((0, 12), (12, 14), (14, 20)), lookback=5, horizon=3)
