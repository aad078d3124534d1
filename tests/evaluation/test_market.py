"""Hand-computed checks for lstmcast.evaluation.market."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from lstmcast.errors import ConfigError
from lstmcast.evaluation.market import (
    hit_rates,
    market_report,
    periods_per_year,
    step_returns,
    theil_u2,
    trading_rule,
)

# One series, one variable, four consecutive periods. Each window's last level is the
# previous window's step-1 actual, so the actual step-1 returns are +10%, -10%, 0%, +10%.
LAST = [100.0, 110.0, 99.0, 99.0]
STEP1 = [110.0, 99.0, 99.0, 108.9]
# Step-1 forecasts: up, down (100 < 110), flat (99 == 99), down -> positions +1, -1, 0, -1.
FORECAST1 = [105.0, 100.0, 99.0, 95.0]


Case = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def trading_case(k: int = 4) -> Case:
    """The first k periods of the case above, H=2 (step 2 is noise the rule must ignore)."""
    actual = np.array([[[s], [s * 3.0]] for s in STEP1[:k]])  # (k, 2, 1)
    predicted = np.array([[[f], [f / 7.0]] for f in FORECAST1[:k]])
    last = np.array(LAST[:k]).reshape(k, 1)
    return actual, predicted, last, np.zeros(k, dtype=int), np.arange(k)


def leaves(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [leaf for v in x.values() for leaf in leaves(v)]
    if isinstance(x, list):
        return [leaf for v in x for leaf in leaves(v)]
    return [x]


# --- step returns ------------------------------------------------------------------------


def test_step_returns_chain_along_the_path() -> None:
    levels = np.array([[[102.0], [51.0], [51.0]]])  # (1, 3, 1)
    r = step_returns(levels, np.array([[100.0]]))
    assert r.shape == (1, 3, 1)
    assert r[0, :, 0] == pytest.approx([0.02, -0.5, 0.0])


def test_step_returns_nan_after_a_zero_level() -> None:
    r = step_returns(np.array([[[0.0], [5.0]]]), np.array([[2.0]]))
    assert r[0, 0, 0] == pytest.approx(-1.0)
    assert math.isnan(r[0, 1, 0])


# --- hit rates ---------------------------------------------------------------------------


def hit_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # actual path from 100: 101 (+), 101 (0, left out), 100 (-), 99 (-)
    # predicted path from 100: 102 (+), 101 (-), 101 (0 = miss), 100 (-)
    # Step 2's forecast is a fall (102 -> 101) although 101 is still above the origin.
    actual = np.array([101.0, 101.0, 100.0, 99.0]).reshape(1, 4, 1)
    predicted = np.array([102.0, 101.0, 101.0, 100.0]).reshape(1, 4, 1)
    return actual, predicted, np.array([[100.0]])


def test_hit_rates_by_hand() -> None:
    actual, predicted, last = hit_case()
    res = hit_rates(actual, predicted, last, None, ["px"])
    # Scored cells: steps 1, 3, 4. Hits: step 1 and step 4; step 3's zero forecast misses.
    assert res["overall"] == {
        "model": pytest.approx(2 / 3),
        "always_up": pytest.approx(1 / 3),
        "majority": None,
        "n": 3,
    }
    assert res["per_variable"]["px"] == res["overall"]
    assert res["majority_direction"] is None
    per_h = res["per_horizon"]
    assert [b["n"] for b in per_h] == [1, 0, 1, 1]
    assert [b["model"] for b in per_h] == [1.0, None, 0.0, 1.0]
    assert [b["always_up"] for b in per_h] == [1.0, None, 0.0, 0.0]


def test_majority_comes_from_training_up_fraction() -> None:
    actual, predicted, last = hit_case()
    down = hit_rates(actual, predicted, last, np.array([0.4]), ["px"])
    assert down["majority_direction"] == {"px": "down"}
    assert down["overall"]["majority"] == pytest.approx(2 / 3)  # steps 3 and 4 fell
    up = hit_rates(actual, predicted, last, np.array([0.5]), ["px"])  # 0.5 counts as up
    assert up["majority_direction"] == {"px": "up"}
    assert up["overall"]["majority"] == pytest.approx(1 / 3)


def test_majority_is_per_variable() -> None:
    # Two variables, one step each: x rises, y falls. Majority: x up, y down -> both right.
    actual = np.array([[[11.0, 9.0]]])
    predicted = np.array([[[9.0, 9.0]]])  # x wrong (down), y right (down)
    res = hit_rates(actual, predicted, np.array([[10.0, 10.0]]), np.array([0.7, 0.2]), ["x", "y"])
    assert res["majority_direction"] == {"x": "up", "y": "down"}
    assert res["overall"] == {"model": 0.5, "always_up": 0.5, "majority": 1.0, "n": 2}
    assert res["per_variable"]["x"]["model"] == 0.0
    assert res["per_variable"]["y"]["model"] == 1.0


def test_hit_rates_none_when_nothing_moved() -> None:
    flat = np.full((2, 3, 1), 5.0)
    res = hit_rates(flat, flat + 1.0, np.full((2, 1), 5.0), np.array([0.6]))
    assert res["overall"] == {"model": None, "always_up": None, "majority": None, "n": 0}


# --- Theil's U2 --------------------------------------------------------------------------


def test_u2_random_walk_is_one_and_perfect_is_zero() -> None:
    rng = np.random.default_rng(0)
    last = rng.uniform(50, 150, size=(5, 2))
    actual = last[:, None, :] * rng.uniform(0.9, 1.1, size=(5, 3, 2))
    walk = np.repeat(last[:, None, :], 3, axis=1)
    res = theil_u2(actual, walk, last, ["a", "b"])
    assert res["overall"] == 1.0
    assert res["per_variable"] == {"a": 1.0, "b": 1.0}
    assert res["per_horizon"] == [1.0, 1.0, 1.0]
    assert theil_u2(actual, actual, last)["overall"] == 0.0


def test_u2_by_hand_in_relative_errors() -> None:
    # Window 1: last 100, actual 110, forecast 105 -> model 0.05, walk 0.10.
    # Window 2: last 10, actual 9, forecast 10.5 -> model -0.15, walk -0.10.
    actual = np.array([[[110.0]], [[9.0]]])
    predicted = np.array([[[105.0]], [[10.5]]])
    last = np.array([[100.0], [10.0]])
    u2 = theil_u2(actual, predicted, last)["overall"]
    assert u2 == pytest.approx(math.sqrt((0.0025 + 0.0225) / (0.01 + 0.01)))


def test_u2_none_for_zero_last_or_zero_denominator() -> None:
    actual = np.array([[[1.0, 4.0, 3.0]]])
    predicted = np.array([[[2.0, 5.0, 3.5]]])
    last = np.array([[0.0, 4.0, 2.0]])  # x: last is 0; y: actual == last (walk is exact)
    res = theil_u2(actual, predicted, last, ["x", "y", "z"])
    assert res["per_variable"]["x"] is None
    assert res["per_variable"]["y"] is None
    assert res["per_variable"]["z"] == pytest.approx(0.5)  # 0.25 / 0.5
    assert res["overall"] is None  # the zero last sits in the overall block too
    assert res["per_horizon"] == [None]


# --- periods per year --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("B", 252.0),
        ("C", 252.0),
        ("D", 365.0),
        ("W", 52.0),
        ("W-SUN", 52.0),
        ("M", 12.0),
        ("MS", 12.0),
        ("ME", 12.0),
        ("BM", 12.0),
        ("BMS", 12.0),
        ("Q", 4.0),
        ("QS", 4.0),
        ("QE", 4.0),
        ("Q-DEC", 4.0),
        ("QS-OCT", 4.0),
        ("Y", 1.0),
        ("YS", 1.0),
        ("YE", 1.0),
        ("A", 1.0),
        ("AS", 1.0),
        ("A-DEC", 1.0),
        ("h", 8760.0),
        ("H", 8760.0),
        ("min", 525600.0),
        ("T", 525600.0),
        ("s", 31536000.0),
        ("S", 31536000.0),
        ("2h", 4380.0),
        ("15min", 35040.0),
        ("2W", 26.0),
        ("2B", 126.0),
    ],
)
def test_periods_per_year(freq: str, expected: float) -> None:
    assert periods_per_year(freq) == expected


@pytest.mark.parametrize("freq", [None, "", "X", "ms", "0h", "h2", "D-MON", "W-", "bogus"])
def test_periods_per_year_unknown_is_none(freq: str | None) -> None:
    assert periods_per_year(freq) is None


# --- trading rule ------------------------------------------------------------------------


def test_trading_rule_by_hand_with_cost() -> None:
    res = trading_rule(*trading_case(), cost_bps=10.0, periods_per_year=252.0, columns=["px"])
    out = res["per_variable"]["px"]
    s = out["strategy"]
    # Position changes 0->+1, +1->-1, -1->0, 0->-1: turnover 1 + 2 + 1 + 1 = 5, cost 0.001 each.
    # Period returns: +0.1-0.001, +0.1-0.002, 0-0.001, -0.1-0.001.
    assert s["turnover"] == 5.0
    assert s["long_fraction"] == 0.25
    assert s["mean_return"] == pytest.approx(0.02375)  # (0.099+0.098-0.001-0.101)/4
    assert s["cumulative_return"] == pytest.approx(0.083740272902)  # 1.099*1.098*.999*.899-1
    assert s["max_drawdown"] == pytest.approx(0.101899)  # 1 - 0.999*0.899 from the peak
    assert s["volatility"] == pytest.approx(math.sqrt(0.02735075 / 3))
    assert s["sharpe"] == pytest.approx(0.02375 / math.sqrt(0.02735075 / 3))
    assert s["sharpe_annualised"] == pytest.approx(s["sharpe"] * math.sqrt(252.0))
    # Buy and hold: +0.1-0.001 (entry), -0.1, 0, +0.1.
    b = out["buy_and_hold"]
    assert b["cumulative_return"] == pytest.approx(0.08801)  # 1.099*0.9*1.0*1.1-1
    assert b["max_drawdown"] == pytest.approx(0.1)
    assert "turnover" not in b
    assert out["n_periods"] == 4
    assert out["n_series"] == 1
    assert "per_series" not in out
    assert "reason" not in out
    assert res["cost_bps"] == 10.0
    assert res["periods_per_year"] == 252.0
    assert res["note"].startswith("Illustration only, not investment advice")


@pytest.mark.parametrize(
    ("k", "expected"),
    # Wealth after each period, so each period's return is pinned down on its own.
    [(1, 0.099), (2, 0.206702), (3, 0.205495298), (4, 0.083740272902)],
)
def test_trading_rule_each_period_by_hand(k: int, expected: float) -> None:
    res = trading_rule(*trading_case(k), cost_bps=10.0)
    assert res["per_variable"]["0"]["strategy"]["cumulative_return"] == pytest.approx(expected)


def test_single_period_has_no_volatility_or_sharpe() -> None:
    s = trading_rule(*trading_case(1), periods_per_year=252.0)["per_variable"]["0"]["strategy"]
    assert s["volatility"] is None
    assert s["sharpe"] is None
    assert s["sharpe_annualised"] is None


def test_windows_are_sorted_by_start() -> None:
    actual, predicted, last, series, starts = trading_case()
    order = np.array([2, 0, 3, 1])
    shuffled = trading_rule(actual[order], predicted[order], last[order], series, starts[order])
    assert shuffled == trading_rule(actual, predicted, last, series, starts)


def test_buy_and_hold_is_last_over_first_level_without_cost() -> None:
    res = trading_rule(*trading_case())["per_variable"]["0"]
    assert res["buy_and_hold"]["cumulative_return"] == pytest.approx(108.9 / 100.0 - 1.0)
    # Without cost the strategy earns +0.1, +0.1, 0, -0.1.
    assert res["strategy"]["cumulative_return"] == pytest.approx(1.1 * 1.1 * 0.9 - 1.0)


def test_flat_forecast_never_trades() -> None:
    actual, _, last, series, starts = trading_case()
    repeat_last = np.repeat(last[:, None, :], 2, axis=1)
    s = trading_rule(actual, repeat_last, last, series, starts, cost_bps=10.0)
    s = s["per_variable"]["0"]["strategy"]
    assert s["turnover"] == 0.0
    assert s["long_fraction"] == 0.0
    assert s["cumulative_return"] == 0.0
    assert s["volatility"] == 0.0
    assert s["sharpe"] is None
    assert s["max_drawdown"] == 0.0


def test_drawdown_counts_from_the_starting_wealth() -> None:
    # Long twice: -10% then +5%. Wealth 1 -> 0.9 -> 0.945; the worst fall is from the start.
    actual = np.array([[[90.0]], [[94.5]]])
    predicted = np.array([[[101.0]], [[91.0]]])
    last = np.array([[100.0], [90.0]])
    out = trading_rule(actual, predicted, last, np.zeros(2), np.arange(2))["per_variable"]["0"]
    assert out["strategy"]["max_drawdown"] == pytest.approx(0.1)
    assert out["buy_and_hold"]["max_drawdown"] == pytest.approx(0.1)


def test_steady_climb_has_no_sharpe() -> None:
    # +10% three times; the computed returns differ only by rounding (~1e-16).
    levels = [100.0, 110.0, 121.0, 133.1]
    actual = np.array(levels[1:]).reshape(3, 1, 1)
    last = np.array(levels[:-1]).reshape(3, 1)
    res = trading_rule(actual, actual, last, np.zeros(3), np.arange(3), periods_per_year=252.0)
    b = res["per_variable"]["0"]["buy_and_hold"]
    assert b["cumulative_return"] == pytest.approx(0.331)
    assert b["volatility"] == 0.0
    assert b["sharpe"] is None
    assert b["sharpe_annualised"] is None


def test_non_consecutive_starts_give_none_with_reason() -> None:
    actual, predicted, last, series, _ = trading_case()
    res = trading_rule(actual, predicted, last, series, np.array([0, 1, 3, 4]))
    out = res["per_variable"]["0"]
    assert out["strategy"] is None
    assert out["buy_and_hold"] is None
    assert out["n_series"] == 0
    assert "not consecutive" in out["reason"]
    assert "start 1 is followed by 3" in out["reason"]
    json.dumps(res, allow_nan=False)


def test_duplicate_starts_are_not_consecutive() -> None:
    actual, predicted, last, series, _ = trading_case()
    out = trading_rule(actual, predicted, last, series, np.array([0, 1, 1, 2]))
    assert out["per_variable"]["0"]["strategy"] is None


def two_series() -> Case:
    """Series 3 is the four-period case; series 7 rises 10% twice on two 'up' forecasts."""
    a4, p4, l4, _, s4 = trading_case()
    a2 = np.array([[[11.0], [0.0]], [[12.1], [0.0]]])
    p2 = np.array([[[12.0], [0.0]], [[13.0], [0.0]]])
    l2 = np.array([[10.0], [11.0]])
    # Interleave the rows: the function must group by series, not rely on row order.
    actual = np.concatenate([a2[:1], a4, a2[1:]])
    predicted = np.concatenate([p2[:1], p4, p2[1:]])
    last = np.concatenate([l2[:1], l4, l2[1:]])
    series = np.array([7, 3, 3, 3, 3, 7])
    starts = np.array([50, 0, 1, 2, 3, 51])
    del s4
    return actual, predicted, last, series, starts


def test_multi_series_mean() -> None:
    out = trading_rule(*two_series())["per_variable"]["0"]
    # Series 3 without cost: strategy 1.1*1.1*1*0.9-1 = 0.089, turnover 5.
    # Series 7: strategy 1.1*1.1-1 = 0.21, turnover 1 (one entry, then held).
    assert out["n_series"] == 2
    assert out["n_periods"] == 6
    assert set(out["per_series"]) == {"3", "7"}
    assert out["per_series"]["7"]["strategy"]["cumulative_return"] == pytest.approx(0.21)
    assert out["per_series"]["3"]["strategy"]["turnover"] == 5.0
    assert out["strategy"]["cumulative_return"] == pytest.approx((0.089 + 0.21) / 2)
    assert out["strategy"]["turnover"] == pytest.approx(3.0)
    assert out["strategy"]["long_fraction"] == pytest.approx((0.25 + 1.0) / 2)
    assert out["buy_and_hold"]["cumulative_return"] == pytest.approx((0.089 + 0.21) / 2)


def test_multi_series_mean_skips_undefined_values() -> None:
    # Series 7 has one period: its Sharpe is None, so the mean Sharpe is series 3's alone.
    actual, predicted, last, series, starts = two_series()
    keep = np.arange(5)  # drop series 7's second window
    out = trading_rule(actual[keep], predicted[keep], last[keep], series[keep], starts[keep])
    out = out["per_variable"]["0"]
    assert out["per_series"]["7"]["strategy"]["sharpe"] is None
    assert out["strategy"]["sharpe"] == pytest.approx(out["per_series"]["3"]["strategy"]["sharpe"])
    assert out["strategy"]["cumulative_return"] == pytest.approx((0.089 + 0.1) / 2)


def test_multi_series_skips_the_broken_series() -> None:
    actual, predicted, last, series, starts = two_series()
    starts = starts.copy()
    starts[5] = 53  # series 7 now has a gap
    out = trading_rule(actual, predicted, last, series, starts)["per_variable"]["0"]
    assert out["n_series"] == 1
    assert out["n_periods"] == 4
    assert out["strategy"]["cumulative_return"] == pytest.approx(0.089)
    assert out["per_series"]["7"]["strategy"] is None
    assert "series 7" in out["reason"]


def test_zero_last_level_is_left_out_with_reason() -> None:
    actual, predicted, last, series, starts = trading_case()
    last = last.copy()
    last[2, 0] = 0.0
    out = trading_rule(actual, predicted, last, series, starts)["per_variable"]["0"]
    assert out["strategy"] is None
    assert "undefined" in out["reason"]


# --- report, JSON safety and validation --------------------------------------------------


def test_market_report_is_json_safe_plain_python() -> None:
    rng = np.random.default_rng(1)
    n, h, v = 6, 3, 2
    last = rng.uniform(90, 110, size=(n, v))
    actual = last[:, None, :] * rng.uniform(0.95, 1.05, size=(n, h, v))
    predicted = last[:, None, :] * rng.uniform(0.95, 1.05, size=(n, h, v))
    actual[0, :, 1] = last[0, 1]  # a flat stretch
    last[3, 1] = 0.0  # an undefined return: U2 None, hit cells left out
    series = np.array([0, 0, 0, 1, 1, 1])
    starts = np.array([0, 1, 2, 0, 1, 2])
    res = market_report(
        actual, predicted, last, series, starts, ["a", "b"], np.array([0.5, 0.4]), 5.0, "B"
    )
    assert set(res) == {"hit_rate", "theil_u2", "trading", "note"}
    assert "repeat_last" in res["note"]
    assert "U2 < 1" in res["note"]
    assert res["trading"]["periods_per_year"] == 252.0
    assert res["trading"]["per_variable"]["b"]["per_series"]["1"]["strategy"] is None
    json.dumps(res, allow_nan=False)
    for leaf in leaves(res):
        assert type(leaf) in (float, int, str, type(None)), leaf


def test_shape_validation() -> None:
    a = np.ones((2, 3, 1))
    last = np.ones((2, 1))
    idx = np.arange(2)
    with pytest.raises(ConfigError, match=r"'actual'.*3-D.*Got shape \(2, 3\)"):
        hit_rates(np.ones((2, 3)), a, last)
    with pytest.raises(ConfigError, match=r"'predicted'.*\(2, 3, 1\).*Got \(2, 3, 2\)"):
        theil_u2(a, np.ones((2, 3, 2)), last)
    with pytest.raises(ConfigError, match=r"'last'.*\(2, 1\).*Got \(2,\)"):
        trading_rule(a, a, np.ones(2), idx, idx)
    with pytest.raises(ConfigError, match=r"'levels'.*3-D"):
        step_returns(np.ones(3), last)
    with pytest.raises(ConfigError, match=r"'up_fraction'.*\(1,\).*Got \(2,\)"):
        hit_rates(a, a, last, np.array([0.5, 0.5]))
    with pytest.raises(ConfigError, match=r"'up_fraction'.*\[0, 1\]"):
        hit_rates(a, a, last, np.array([1.5]))
    with pytest.raises(ConfigError, match=r"'series'.*\(2,\).*Got \(3,\)"):
        trading_rule(a, a, last, np.arange(3), idx)
    with pytest.raises(ConfigError, match=r"'starts'.*integers"):
        trading_rule(a, a, last, idx, np.array([0.0, 0.5]))
    with pytest.raises(ConfigError, match=r"'cost_bps'.*>= 0"):
        trading_rule(a, a, last, idx, idx, cost_bps=-1.0)
    with pytest.raises(ConfigError, match=r"'periods_per_year'.*> 0"):
        trading_rule(a, a, last, idx, idx, periods_per_year=0.0)
    with pytest.raises(ConfigError, match=r"'columns'.*all 1 variables"):
        market_report(a, a, last, idx, idx, ["x", "y"])
    with pytest.raises(ConfigError, match=r"'actual'.*finite"):
        theil_u2(np.full((2, 3, 1), np.nan), a, last)
