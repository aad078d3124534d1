"""Hand-computed checks for lstmcast.evaluation.metrics."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lstmcast.errors import ConfigError
from lstmcast.evaluation import forecast_metrics, naive_one_step_mae, skill_score

KEYS = {
    "mse",
    "mae",
    "rmse",
    "mape",
    "mape_zeros_skipped",
    "smape",
    "mase",
    "directional_accuracy",
    "n",
}


def one_series(actual: list[float], predicted: list[float], last: float) -> dict[str, Any]:
    """Metrics for a single window (N=1) of a single variable (V=1) over len(actual) steps."""
    a = np.array(actual, dtype=float).reshape(1, -1, 1)
    p = np.array(predicted, dtype=float).reshape(1, -1, 1)
    return forecast_metrics(a, p, np.array([[last]]))["overall"]


def random_case(seed: int, n: int = 5, h: int = 4, v: int = 3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    actual = rng.normal(size=(n, h, v))
    predicted = actual + rng.normal(scale=0.5, size=(n, h, v))
    last = rng.normal(size=(n, v))
    return actual, predicted, last


# --- hand-computed values ----------------------------------------------------------------


def test_basic_errors_by_hand() -> None:
    # errors p - a: 1, 0, -2
    m = one_series([1.0, 2.0, 4.0], [2.0, 2.0, 2.0], last=3.0)
    assert m["mae"] == pytest.approx(1.0)
    assert m["mse"] == pytest.approx(5 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(5 / 3))
    # APE: 100, 0, 50
    assert m["mape"] == pytest.approx(50.0)
    assert m["mape_zeros_skipped"] == 0
    # sAPE: 200*1/3, 0, 200*2/6
    assert m["smape"] == pytest.approx(400 / 9)
    # changes from 3: actual -2, -1, +1; predicted -1, -1, -1 -> hit, hit, miss
    assert m["directional_accuracy"] == pytest.approx(2 / 3)
    assert m["mase"] is None  # no naive_mae given
    assert m["n"] == 3
    assert set(m) == KEYS


def test_mape_skips_zero_actuals_and_counts_them() -> None:
    # cell 1: a=0 (skipped from MAPE); cell 2: APE 100*1/2 = 50; cell 3: a=p=0 (skipped)
    m = one_series([0.0, 2.0, 0.0], [1.0, 3.0, 0.0], last=1.0)
    assert m["mape"] == pytest.approx(50.0)
    assert m["mape_zeros_skipped"] == 2
    # sAPE: 200*1/1 = 200, 200*1/5 = 40, both zero -> 0
    assert m["smape"] == pytest.approx(80.0)


def test_mape_none_when_every_actual_is_zero() -> None:
    m = one_series([0.0, 0.0], [1.0, -1.0], last=1.0)
    assert m["mape"] is None
    assert m["mape_zeros_skipped"] == 2
    assert m["smape"] == pytest.approx(200.0)


def test_perfect_forecast() -> None:
    actual = np.array([[[1.0, -2.0], [3.0, 5.0]]])  # (1, 2, 2)
    m = forecast_metrics(actual, actual.copy(), np.array([[0.0, 0.0]]), naive_mae=[1.0, 2.0])
    for block in [m["overall"], *m["per_variable"].values(), *m["per_horizon"]]:
        for key in ("mse", "mae", "rmse", "mape", "smape", "mase"):
            assert block[key] == 0.0, key
        assert block["directional_accuracy"] == 1.0


def test_directional_zero_predicted_change_is_wrong() -> None:
    # last = 1; actual changes +1, -1, 0; predicted changes 0, -1, +4
    # cell 1 wrong (flat prediction), cell 2 right, cell 3 not counted (actual did not move)
    m = one_series([2.0, 0.0, 1.0], [1.0, 0.0, 5.0], last=1.0)
    assert m["directional_accuracy"] == pytest.approx(0.5)


def test_a_forecast_that_never_moves_has_no_direction_not_a_zero() -> None:
    # repeat_last: every predicted change is 0, so it calls no direction at all
    last = np.array([[1.0, 5.0]])
    actual = np.array([[[2.0, 4.0], [0.0, 6.0]]])  # (1, 2, 2): both variables move
    flat = np.broadcast_to(last[:, None, :], actual.shape).copy()
    m = forecast_metrics(actual, flat, last, columns=["a", "b"])
    assert m["overall"]["directional_accuracy"] is None
    assert all(b["directional_accuracy"] is None for b in m["per_variable"].values())
    # flat on "b" only: "b" has no hit rate; overall its flat cells still count as wrong
    flat[..., 0] = [[3.0, -1.0]]  # "a" called right twice
    m = forecast_metrics(actual, flat, last, columns=["a", "b"])
    assert m["per_variable"]["a"]["directional_accuracy"] == 1.0
    assert m["per_variable"]["b"]["directional_accuracy"] is None
    assert m["overall"]["directional_accuracy"] == pytest.approx(0.5)


def test_directional_none_when_actual_never_moves() -> None:
    m = one_series([1.0, 1.0], [2.0, 0.0], last=1.0)
    assert m["directional_accuracy"] is None


def test_directional_uses_each_windows_own_origin() -> None:
    actual = np.array([[[2.0]], [[2.0]]])  # (2, 1, 1): both windows end at 2
    predicted = np.array([[[3.0]], [[5.0]]])
    # window 0: from 1 actual rose, predicted rose (hit); window 1: from 4 actual fell,
    # predicted rose (miss). Against a shared origin both would score alike.
    last = np.array([[1.0], [4.0]])
    m = forecast_metrics(actual, predicted, last)
    assert m["overall"]["directional_accuracy"] == pytest.approx(0.5)


def test_naive_one_step_mae_by_hand() -> None:
    values = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]])
    # col 0: |1|, |2| -> 1.5; col 1: |2|, |0| -> 1.0
    np.testing.assert_allclose(naive_one_step_mae(values), [1.5, 1.0])
    assert naive_one_step_mae(values).dtype == np.float64


def test_float32_inputs_accumulate_in_float64() -> None:
    values = np.array([[0.1], [0.3], [0.6]], dtype=np.float32)
    out = naive_one_step_mae(values)
    assert out.dtype == np.float64
    assert out[0] == pytest.approx(np.mean(np.abs(np.diff(values.astype(np.float64), axis=0))))


def test_mase_by_hand_is_mean_of_per_variable_ratios() -> None:
    naive = naive_one_step_mae(np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]]))  # [1.5, 1.0]
    actual = np.zeros((1, 2, 2))
    # var 0 errors 3, 3 -> mae 3 -> mase 2; var 1 errors 0.5, -0.5 -> mae 0.5 -> mase 0.5
    predicted = np.array([[[3.0, 0.5], [-3.0, -0.5]]])
    m = forecast_metrics(actual, predicted, np.ones((1, 2)), naive_mae=naive, columns=["a", "b"])
    assert m["per_variable"]["a"]["mase"] == pytest.approx(2.0)
    assert m["per_variable"]["b"]["mase"] == pytest.approx(0.5)
    # mean of ratios (1.25), not pooled mae / mean scale (1.75 / 1.25 = 1.4)
    assert m["overall"]["mase"] == pytest.approx(1.25)
    for step in m["per_horizon"]:
        assert step["mase"] == pytest.approx(1.25)


def test_mase_none_for_constant_column() -> None:
    actual = np.zeros((1, 1, 2))
    predicted = np.array([[[2.0, 1.0]]])
    m = forecast_metrics(actual, predicted, np.zeros((1, 2)), naive_mae=[0.0, 4.0])
    assert m["per_variable"]["0"]["mase"] is None
    assert m["per_variable"]["1"]["mase"] == pytest.approx(0.25)
    assert m["overall"]["mase"] == pytest.approx(0.25)  # only defined columns averaged
    m = forecast_metrics(actual, predicted, np.zeros((1, 2)), naive_mae=[0.0, 0.0])
    assert m["overall"]["mase"] is None
    assert m["per_horizon"][0]["mase"] is None


def test_per_horizon_by_hand() -> None:
    actual = np.zeros((2, 2, 1))
    predicted = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])  # step 1 errors 1, 3; step 2: 2, 4
    m = forecast_metrics(actual, predicted, np.ones((2, 1)))
    assert [s["mae"] for s in m["per_horizon"]] == pytest.approx([2.0, 3.0])
    assert [s["mse"] for s in m["per_horizon"]] == pytest.approx([5.0, 10.0])
    assert [s["n"] for s in m["per_horizon"]] == [2, 2]


def test_skill_score() -> None:
    assert skill_score(1.0, 4.0) == pytest.approx(0.75)
    assert skill_score(4.0, 4.0) == pytest.approx(0.0)
    assert skill_score(8.0, 4.0) == pytest.approx(-1.0)
    assert skill_score(1.0, 0.0) is None
    assert type(skill_score(np.float32(1.0), np.float64(2.0))) is float  # type: ignore[arg-type]


# --- structure and consistency -----------------------------------------------------------


def test_structure_and_default_columns() -> None:
    actual, predicted, last = random_case(0, n=5, h=4, v=3)
    m = forecast_metrics(actual, predicted, last, naive_mae=[1.0, 1.0, 1.0])
    assert set(m) == {"overall", "per_variable", "per_horizon"}
    assert list(m["per_variable"]) == ["0", "1", "2"]
    assert len(m["per_horizon"]) == 4
    assert m["overall"]["n"] == 60
    assert all(b["n"] == 20 for b in m["per_variable"].values())
    assert all(b["n"] == 15 for b in m["per_horizon"])
    for block in [m["overall"], *m["per_variable"].values(), *m["per_horizon"]]:
        assert set(block) == KEYS


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blocks_agree_with_overall(seed: int) -> None:
    actual, predicted, last = random_case(seed)
    actual[0, 0, 0] = 0.0  # one zero actual to exercise MAPE skipping
    naive = np.array([0.5, 1.0, 2.0])
    m = forecast_metrics(actual, predicted, last, naive_mae=naive, columns=["x", "y", "z"])
    overall = m["overall"]
    per_var = list(m["per_variable"].values())
    per_h = m["per_horizon"]
    for key in ("mse", "mae", "smape"):  # equal cell counts -> overall is the plain mean
        assert overall[key] == pytest.approx(np.mean([b[key] for b in per_var]))
        assert overall[key] == pytest.approx(np.mean([b[key] for b in per_h]))
    assert overall["mase"] == pytest.approx(np.mean([b["mase"] for b in per_var]))
    assert overall["mase"] == pytest.approx(np.mean([b["mase"] for b in per_h]))
    assert overall["mape_zeros_skipped"] == 1
    assert sum(b["mape_zeros_skipped"] for b in per_var) == 1
    assert sum(b["mape_zeros_skipped"] for b in per_h) == 1
    assert sum(b["n"] for b in per_var) == overall["n"] == sum(b["n"] for b in per_h)
    # against a direct NumPy computation
    assert overall["mse"] == pytest.approx(np.mean((predicted - actual) ** 2))
    assert m["per_variable"]["y"]["mae"] == pytest.approx(
        np.mean(np.abs(predicted - actual)[..., 1])
    )


def _plain(obj: Any) -> bool:
    if isinstance(obj, dict):
        return all(type(k) is str and _plain(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain(v) for v in obj)
    return obj is None or type(obj) in (float, int)


def test_output_is_json_safe_plain_python() -> None:
    actual, predicted, last = random_case(3)
    actual = actual.astype(np.float32)
    actual[:, :, 0] = 0.0  # MAPE undefined for column 0
    last[:, 1] = actual[:, 0, 1]  # some cells with no actual change
    m = forecast_metrics(actual, predicted.astype(np.float32), last, naive_mae=[0.0, 1.0, 1.0])
    assert _plain(m)
    assert m["per_variable"]["0"]["mape"] is None
    assert m["per_variable"]["0"]["mase"] is None
    json.dumps(m, allow_nan=False)


# --- validation --------------------------------------------------------------------------


def test_shape_validation() -> None:
    a = np.zeros((2, 3, 2))
    last = np.zeros((2, 2))
    with pytest.raises(ConfigError, match=r"'actual'.*3-D.*Got shape \(3, 2\)"):
        forecast_metrics(np.zeros((3, 2)), np.zeros((3, 2)), last)
    with pytest.raises(ConfigError, match=r"'actual'.*non-empty"):
        forecast_metrics(np.zeros((0, 3, 2)), np.zeros((0, 3, 2)), np.zeros((0, 2)))
    with pytest.raises(ConfigError, match=r"'predicted'.*\(2, 3, 2\).*Got \(2, 3, 1\)"):
        forecast_metrics(a, np.zeros((2, 3, 1)), last)
    with pytest.raises(ConfigError, match=r"'last_observed'.*\(2, 2\).*Got \(2, 3\)"):
        forecast_metrics(a, a, np.zeros((2, 3)))
    with pytest.raises(ConfigError, match=r"'naive_mae'.*\(2,\).*Got \(3,\)"):
        forecast_metrics(a, a, last, naive_mae=[1.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match=r"'naive_mae'.*>= 0"):
        forecast_metrics(a, a, last, naive_mae=[1.0, -1.0])
    with pytest.raises(ConfigError, match=r"'columns'.*all 2 variables.*Got 1"):
        forecast_metrics(a, a, last, columns=["only"])
    with pytest.raises(ConfigError, match=r"'columns'.*unique"):
        forecast_metrics(a, a, last, columns=["t", "t"])


def test_non_finite_values_rejected() -> None:
    a = np.zeros((1, 2, 1))
    p = a.copy()
    p[0, 1, 0] = np.nan
    with pytest.raises(ConfigError, match=r"'predicted'.*finite.*1 NaN/inf"):
        forecast_metrics(a, p, np.zeros((1, 1)))
    with pytest.raises(ConfigError, match=r"'values'.*finite"):
        naive_one_step_mae(np.array([[1.0], [np.inf]]))


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        forecast_metrics(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)))


def test_naive_one_step_mae_validation() -> None:
    with pytest.raises(ConfigError, match=r"'values'.*2-D.*Got shape \(4,\)"):
        naive_one_step_mae(np.zeros(4))
    with pytest.raises(ConfigError, match=r"'values'.*at least 2 rows.*Got 1"):
        naive_one_step_mae(np.zeros((1, 3)))


# --- property ----------------------------------------------------------------------------

_values = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, h, v = draw(st.tuples(*(st.integers(1, 4) for _ in range(3))))
    actual = draw(arrays(np.float64, (n, h, v), elements=_values))
    predicted = draw(arrays(np.float64, (n, h, v), elements=_values))
    last = draw(arrays(np.float64, (n, v), elements=_values))
    return actual, predicted, last


@settings(max_examples=60, deadline=None)
@given(_cases())
def test_metric_invariants(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    actual, predicted, last = case
    m = forecast_metrics(actual, predicted, last, naive_mae=np.ones(actual.shape[2]))
    json.dumps(m, allow_nan=False)
    for block in [m["overall"], *m["per_variable"].values(), *m["per_horizon"]]:
        assert block["mse"] >= 0
        assert block["rmse"] == pytest.approx(math.sqrt(block["mse"]))
        assert block["mae"] <= block["rmse"] * (1 + 1e-12) + 1e-12
        assert 0 <= block["smape"] <= 200 + 1e-9
        assert block["mase"] == pytest.approx(block["mae"])  # unit scale
        da = block["directional_accuracy"]
        assert da is None or 0 <= da <= 1
        assert 0 <= block["mape_zeros_skipped"] <= block["n"]
