import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstmcast.data import sliding_windows, window_starts
from lstmcast.errors import ConfigError, DataError


def _series(n_rows: int = 20, n_features: int = 3) -> np.ndarray:
    # Cell value encodes its row (x100) and column, so a window's contents reveal its rows.
    rows = np.arange(n_rows, dtype=np.float32)[:, None] * 100
    return np.ascontiguousarray(rows + np.arange(n_features, dtype=np.float32))


def test_targets_start_right_after_inputs() -> None:
    values = _series()
    inputs, targets = sliding_windows(values, lookback=4, horizon=2)
    assert inputs.shape == (15, 4, 3)  # 20 - 4 - 2 + 1 windows
    assert targets.shape == (15, 2, 3)
    for i in range(15):
        np.testing.assert_array_equal(inputs[i], values[i : i + 4])
        np.testing.assert_array_equal(targets[i], values[i + 4 : i + 6])
        # no look-ahead: every input row is earlier than every target row
        assert inputs[i, :, 0].max() < targets[i, :, 0].min()


def test_stride_and_exact_fit() -> None:
    values = _series(10)
    inputs, targets = sliding_windows(values, lookback=3, horizon=2, stride=2)
    assert inputs[:, 0, 0].tolist() == [0, 200, 400]  # starts 0, 2, 4 (6 would overrun)
    assert targets[-1, -1, 0] == 800  # last window: targets rows 7, 8
    exact_in, exact_out = sliding_windows(values, lookback=7, horizon=3)
    assert exact_in.shape[0] == 1 and exact_out[0, -1, 0] == 900


def test_windows_are_read_only_views_not_copies() -> None:
    values = _series()
    inputs, targets = sliding_windows(values, lookback=5, horizon=3)
    assert np.shares_memory(inputs, values) and np.shares_memory(targets, values)
    assert inputs.base is not None and not inputs.flags.owndata
    assert not inputs.flags.writeable and not targets.flags.writeable
    values[6, 1] = -1.0  # a change to the source shows through the view
    assert inputs[2, 4, 1] == -1.0 and targets[0, 1, 1] == -1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lookback": 0, "horizon": 1}, r"The 'lookback' parameter must be an int >= 1\. Got 0"),
        ({"lookback": 2, "horizon": -1}, r"'horizon' parameter must be an int >= 1\. Got -1"),
        ({"lookback": 2, "horizon": 1, "stride": 1.5}, r"'stride' .* Got 1\.5 instead"),
        ({"lookback": True, "horizon": 1}, r"'lookback' .* Got True instead"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sliding_windows(_series(), **kwargs)  # type: ignore[arg-type]


def test_too_few_rows() -> None:
    with pytest.raises(DataError, match=r"has 5 rows but lookback 4 \+ horizon 2 needs at least 6"):
        sliding_windows(_series(5), lookback=4, horizon=2)
    with pytest.raises(DataError, match=r"2-D array .* shape \(5,\)"):
        sliding_windows(np.zeros(5), lookback=1, horizon=1)


def test_window_starts_train_and_reaching_back() -> None:
    # train rows [0, 10): inputs and targets inside train
    np.testing.assert_array_equal(window_starts(0, 0, 10, 3, 2), np.arange(0, 6))
    # test rows [10, 15) with lookback 3: the first window reads rows 7..9 of the split before
    starts = window_starts(0, 10, 15, 3, 2)
    np.testing.assert_array_equal(starts, [7, 8, 9, 10])
    assert starts.dtype == np.int64
    # the inputs may not reach before first_input_row
    np.testing.assert_array_equal(window_starts(9, 10, 15, 3, 2), [9, 10])
    np.testing.assert_array_equal(window_starts(0, 10, 15, 3, 2, stride=3), [7, 10])
    assert window_starts(0, 10, 11, 3, 2).size == 0  # split shorter than the horizon


def test_window_starts_rejects_negative_rows() -> None:
    with pytest.raises(ConfigError, match=r"'first_input_row' parameter must be an int >= 0"):
        window_starts(-1, 0, 10, 2, 1)


@given(
    first=st.integers(0, 30),
    target_start=st.integers(0, 60),
    length=st.integers(0, 60),
    lookback=st.integers(1, 20),
    horizon=st.integers(1, 10),
    stride=st.integers(1, 5),
)
def test_window_starts_bounds(
    first: int, target_start: int, length: int, lookback: int, horizon: int, stride: int
) -> None:
    target_end = target_start + length
    starts = window_starts(first, target_start, target_end, lookback, horizon, stride)
    assert np.all(starts >= first)
    assert np.all(starts + lookback >= target_start)
    assert np.all(starts + lookback + horizon <= target_end)
    assert np.all(np.diff(starts) == stride)
    # complete: every valid start reachable by the stride from the first one is listed
    valid = [
        s
        for s in range(0, target_end + 1)
        if s >= first and s + lookback >= target_start and s + lookback + horizon <= target_end
    ]
    assert starts.tolist() == valid[::stride]
