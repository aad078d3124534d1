"""Long-format tables: parsing, per-series splits and windows, per-series scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstmcast.data.panel import (
    fit_panel_scaler,
    panel_splits,
    panel_starts,
    prepare_panel,
    window_series,
)
from lstmcast.datasets.synthetic import synthetic_panel
from lstmcast.errors import DataError


def long_table() -> pd.DataFrame:
    """Two series of unequal length and start, rows shuffled."""
    a = pd.DataFrame(
        {
            "id": "A",
            "time": pd.date_range("2024-01-01", periods=30, freq="D"),
            "y": np.arange(30.0),
            "promo": 0.0,
            "region": "north",
            "size": 3.0,
        }
    )
    b = pd.DataFrame(
        {
            "id": "B",
            "time": pd.date_range("2024-01-10", periods=20, freq="D"),
            "y": 100 + np.arange(20.0),
            "promo": 1.0,
            "region": "south",
            "size": 7.0,
        }
    )
    return pd.concat([a, b]).sample(frac=1, random_state=0).reset_index(drop=True)


def read(frame: pd.DataFrame, **options):
    defaults = dict(id_col="id", targets=["y"], source="t")
    return prepare_panel(frame, **{**defaults, **options})


def test_long_format_with_unequal_lengths_is_grouped_and_sorted_by_time():
    frame = long_table()
    panel = read(frame, future_covariates=["promo"], static=["region", "size"])
    first = frame["id"].iloc[0]
    assert panel.ids[0] == first and set(panel.ids) == {"A", "B"}  # first appearance
    lengths = dict(zip(panel.ids, panel.lengths(), strict=True))
    assert lengths == {"A": 30, "B": 20}
    for i, name in enumerate(panel.ids):
        rows = panel.rows(i)
        assert panel.time[rows].is_monotonic_increasing
        expected = np.arange(30.0) if name == "A" else 100 + np.arange(20.0)
        np.testing.assert_array_equal(panel.values[rows, 0], expected)
    assert panel.freq == "D"
    assert panel.future_covariates == ("promo",)
    assert panel.static.numeric_names == ("size",)
    assert panel.static.categories["region"] == ("north", "south")
    size = dict(zip(panel.ids, panel.static.numeric[:, 0], strict=True))
    assert size == {"A": 3.0, "B": 7.0}


def test_a_repeated_id_and_time_pair_is_named():
    frame = long_table()
    frame = pd.concat([frame, frame.iloc[[3]]], ignore_index=True)
    series, stamp = frame["id"].iloc[3], frame["time"].iloc[3]
    with pytest.raises(
        DataError,
        match=rf"series '{series}' has the timestamp {stamp:%Y-%m-%d} twice "
        rf"\(rows 4 and {len(frame)}\)",
    ):
        read(frame)


def test_an_empty_id_is_named_with_its_row():
    frame = long_table()
    frame.loc[5, "id"] = None
    with pytest.raises(DataError, match="column 'id' row 6 is empty"):
        read(frame)


def test_a_static_column_that_varies_names_the_first_series():
    frame = long_table()
    frame.loc[frame["id"] == "B", "region"] = ["south", "east"] * 10
    with pytest.raises(DataError, match="static column 'region' is not constant in series 'B'"):
        read(frame, static=["region"])


def test_gaps_are_filled_within_a_series_never_from_its_neighbour():
    frame = long_table().sort_values(["id", "time"]).reset_index(drop=True)
    frame.loc[frame["id"] == "B", "y"] = frame.loc[frame["id"] == "B", "y"].to_numpy()
    first_b = frame.index[frame["id"] == "B"][0]
    frame.loc[first_b, "y"] = np.nan  # the first row of B: A's last value must not leak in
    with pytest.raises(DataError, match=r"row \d+ \(series 'B'\) is empty"):
        read(frame)
    panel = read(frame, fill="ffill")
    b = panel.ids.index("B")
    assert panel.values[panel.rows(b), 0][0] == 101.0  # back-filled from B itself, not 29


def test_short_series_are_skipped_with_the_reason_and_none_left_is_an_error():
    panel = read(long_table())
    split = panel_splits(
        panel,
        lookback=13,
        horizon=2,
        val_fraction=0.1,
        test_fraction=0.2,
        val_start=None,
        test_start=None,
    )
    assert [s is not None for s in split.splits] == [p == "A" for p in panel.ids]
    assert split.skipped[0][0] == "B" and "20 rows" in split.skipped[0][1]
    with pytest.raises(DataError, match=r"no series is long enough .* all 2 were skipped"):
        panel_splits(panel, 40, 2, 0.1, 0.2, None, None)


def test_a_time_split_gives_every_series_the_same_test_period():
    panel = read(long_table())
    split = panel_splits(panel, 3, 1, 0.1, 0.2, "2024-01-20", "2024-01-25")
    for i, s in enumerate(split.splits):
        time = panel.time[panel.rows(i)]
        assert time[s.test[0]] == pd.Timestamp("2024-01-25")
        assert time[s.val[0]] == pd.Timestamp("2024-01-20")


def test_windows_never_cross_a_series_boundary():
    frame = synthetic_panel(n_series=7, n_rows=60, seed=3)
    panel = read(frame, targets=["sales"])
    split = panel_splits(panel, 8, 3, 0.1, 0.2, None, None)
    for part in ("train", "val", "test"):
        starts = panel_starts(panel.bounds, split, part, 8, 3)
        first, last = (
            window_series(panel.bounds, starts),
            window_series(panel.bounds, starts + 8 + 3 - 1),
        )
        np.testing.assert_array_equal(first, last)


def test_each_series_is_scaled_on_its_own_training_rows_only():
    panel = read(long_table())
    split = panel_splits(panel, 3, 1, 0.1, 0.2, None, None)
    scaler = fit_panel_scaler(panel, split, "standard")
    for i, s in enumerate(split.splits):
        train = panel.values[panel.rows(i)][s.train[0] : s.train[1], 0].astype(np.float64)
        assert scaler.center[i, 0] == pytest.approx(train.mean())
        assert scaler.scale[i, 0] == pytest.approx(train.std())
    # validation and test values never reach the scaler
    changed = long_table()
    late = changed["time"] > pd.Timestamp("2024-01-23")  # after both train splits
    changed.loc[late, "y"] *= 1000
    again = fit_panel_scaler(read(changed), split, "standard")
    np.testing.assert_array_equal(again.center, scaler.center)
    np.testing.assert_array_equal(again.scale, scaler.scale)


def test_the_time_column_given_as_the_id_column_is_named():
    frame = long_table()[["id", "time", "y"]]
    swapped = frame.assign(time=frame["time"].astype(str)).rename(columns={"id": "ticker"})
    with pytest.raises(DataError, match="column 'time' in --id-col looks like the time column"):
        read(swapped, id_col="time")
    cohorts = frame.assign(cohort=frame["id"].map({"A": "2024-01-01", "B": "2024-02-01"}))
    assert read(cohorts, id_col="cohort").time_col == "time"  # dates as ids, time elsewhere
