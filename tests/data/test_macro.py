"""Macro data joined as-of with a release lag: no future value reaches a row."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import lstmcast
from lstmcast.data.macro import parse_lag, read_macro
from lstmcast.data.panel import prepare_panel, with_macro
from lstmcast.errors import ConfigError, DataError


def monthly(tmp_path, values=None, name="cpi.csv"):
    months = pd.date_range("2024-01-01", periods=6, freq="MS")
    frame = pd.DataFrame(
        {"date": months, "cpi": values if values is not None else 100.0 + np.arange(6)}
    )
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def daily(rows=150):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=rows, freq="D"),
            "y": np.cumsum(rng.normal(0, 1, rows)),
        }
    )


def test_each_row_sees_the_latest_value_released_at_or_before_it(tmp_path):
    macro = read_macro(monthly(tmp_path), "45D")  # January's value is public on February 15
    time = pd.DatetimeIndex(["2024-02-14", "2024-02-15", "2024-03-16", "2024-04-01"])
    joined = macro.as_of(time)[:, 0]
    assert np.isnan(joined[0])  # nothing released yet
    # February's value (dated Feb 1) is public on March 17: not yet on March 16
    np.testing.assert_array_equal(joined[1:], [100.0, 100.0, 101.0])
    without_lag = read_macro(monthly(tmp_path), None).as_of(time)[:, 0]
    np.testing.assert_array_equal(without_lag, [101.0, 101.0, 102.0, 103.0])


def test_rows_before_the_first_release_are_dropped_never_back_filled(tmp_path):
    panel = prepare_panel(daily(), id_col=None, targets=["y"])
    joined = with_macro(panel, read_macro(monthly(tmp_path), "45D"))
    assert joined.covariates == ("cpi",)
    assert joined.time[0] == pd.Timestamp("2024-02-15") and len(joined) == len(panel) - 45
    assert not np.isnan(joined.values).any()


def test_no_later_macro_value_reaches_a_row(tmp_path):
    base = with_macro(
        prepare_panel(daily(), id_col=None, targets=["y"]), read_macro(monthly(tmp_path), "45D")
    )
    changed_values = 100.0 + np.arange(6)
    changed_values[3:] = -999.0  # April onwards: released from May 16 on
    changed = with_macro(
        prepare_panel(daily(), id_col=None, targets=["y"]),
        read_macro(monthly(tmp_path, changed_values, "c.csv"), "45D"),
    )
    before = base.time < pd.Timestamp("2024-05-16")
    np.testing.assert_array_equal(base.values[before], changed.values[before])
    assert (changed.values[~before, 1] == -999.0).all()


def test_the_forecast_of_a_window_ignores_macro_values_released_after_it(tmp_path):
    data = daily(200)
    fc = lstmcast.Forecaster(
        "lstm",
        lookback=10,
        horizon=2,
        targets=["y"],
        layers=(4,),
        epochs=1,
        macro=str(monthly(tmp_path)),
        release_lag="45D",
    )
    fc.fit(data)
    result, panel = fc.backtest(data, split="all")
    k = int(np.searchsorted(panel.time[result.starts + 9], pd.Timestamp("2024-05-10")))
    values = 100.0 + np.arange(6)
    values[3:] = 5000.0  # released from 2024-05-16: after window k's origin
    other = lstmcast.load(fc.save(tmp_path / "m"))  # the same model, read with other CPI
    other.config = dataclasses.replace(other.config, macro=str(monthly(tmp_path, values, "c.csv")))
    again, _ = other.backtest(data, split="all")
    np.testing.assert_array_equal(again.predicted_scaled[: k + 1], result.predicted_scaled[: k + 1])
    assert not np.array_equal(again.predicted_scaled[-1], result.predicted_scaled[-1])


def test_bad_macro_input_is_one_line(tmp_path):
    no_time = tmp_path / "nt.csv"
    pd.DataFrame({"cpi": [1.0, 2.0]}).to_csv(no_time, index=False)
    with pytest.raises(DataError, match=r"macro file '.*nt.csv' has no time column"):
        read_macro(no_time, None)
    late = tmp_path / "late.csv"
    pd.DataFrame({"date": ["2030-01-01", "2030-02-01"], "cpi": [1.0, 2.0]}).to_csv(
        late, index=False
    )
    panel = prepare_panel(daily(), id_col=None, targets=["y"])
    with pytest.raises(DataError, match=r"released 2030-01-01 .* after the data ends"):
        with_macro(panel, read_macro(late, None))
    with pytest.raises(ConfigError, match="'release_lag' option takes a duration"):
        parse_lag("soon")
    with pytest.raises(ConfigError, match="give --macro too"):
        lstmcast.Forecaster("linear", release_lag="30D")


def test_a_repeated_macro_date_is_refused_with_why_not_kept(tmp_path):
    # a repeat is usually a revision: keeping the revised figure at the original date would
    # let a later release into earlier rows, so no --duplicates policy applies to macro files
    revised = tmp_path / "revised.csv"
    pd.DataFrame(
        {"date": ["2024-01-01", "2024-02-01", "2024-02-01"], "cpi": [1.0, 2.0, 2.1]}
    ).to_csv(revised, index=False)
    with pytest.raises(DataError, match=r"rows 2 and 3.*first-released value.*leaks") as info:
        read_macro(revised, None)
    assert "--duplicates" not in str(info.value)
