"""Checks for lstmcast.evaluation.intervals: the conformal guarantee, hand-computed scores,
calibration on synthetic Gaussian data, and the closed-form Gaussian CRPS."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lstmcast.errors import ConfigError, DataError
from lstmcast.evaluation.intervals import (
    conformal_quantile,
    crps_from_quantiles,
    interval_metrics,
    interval_score,
    interval_verdict,
    level_key,
    min_calibration_windows,
    pinball,
    sharper,
)

BLOCK_KEYS = {"level", "coverage", "width", "interval_score", "pinball", "calibrated"}
NORMAL = NormalDist()


def exact_rank(n: int, level: float) -> int:
    """ceil((n + 1) * level) in exact decimal arithmetic (level as written, e.g. 0.55)."""
    return math.ceil((n + 1) * Fraction(str(level)))


def gaussian_case(
    seed: int, n: int = 400, h: int = 3, v: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Actuals drawn from N(mu, sigma) with mu, sigma varying by window, step and variable."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, h, v)) * 3.0
    sigma = rng.uniform(0.5, 2.0, size=(n, h, v))
    actual = mu + sigma * rng.normal(size=(n, h, v))
    return actual, mu, sigma


def gaussian_bands(
    mu: np.ndarray, sigma: np.ndarray, levels: tuple[float, ...], scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Central bands mu +- z sigma * scale at each level, (N, H, V, K); scale 1 is exact."""
    z = np.array([NORMAL.inv_cdf((1 + level) / 2) for level in levels])
    half = sigma[..., None] * z * scale
    return mu[..., None] - half, mu[..., None] + half


def gaussian_crps(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of N(mu, sigma) at y (Gneiting & Raftery, 2007)."""
    z = (y - mu) / sigma
    erf = np.vectorize(math.erf)
    cdf = 0.5 * (1.0 + erf(z / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return sigma * (z * (2.0 * cdf - 1.0) + 2.0 * pdf - 1.0 / math.sqrt(math.pi))


def midpoint_taus(q: int) -> np.ndarray:
    return (np.arange(1, q + 1) - 0.5) / q


def gaussian_quantiles(mu: np.ndarray, sigma: np.ndarray, taus: np.ndarray) -> np.ndarray:
    z = np.array([NORMAL.inv_cdf(float(t)) for t in taus])
    return mu[..., None] + sigma[..., None] * z


# --------------------------------------------------------------------------------------------
# conformal_quantile
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "level"), [(99, 0.9), (50, 0.9), (19, 0.8), (39, 0.95)])
def test_conformal_coverage_is_k_over_n_plus_1(n: int, level: float) -> None:
    # Heavy-tailed residuals: the guarantee is distribution-free. For each seed, calibrate on
    # n windows and count how many of 100 fresh exchangeable draws fall within +-q.
    coverages = []
    for seed in range(400):
        rng = np.random.default_rng(seed)
        q = conformal_quantile(np.abs(rng.standard_t(3, size=n)), level)
        fresh = np.abs(rng.standard_t(3, size=100))
        coverages.append(float(np.mean(fresh <= q)))
    mean = float(np.mean(coverages))
    se = float(np.std(coverages, ddof=1)) / math.sqrt(len(coverages))
    expected = exact_rank(n, level) / (n + 1)  # exact for continuous scores
    assert expected >= level
    assert mean >= level - 3 * se  # valid: at least the level, up to sampling error
    assert abs(mean - expected) <= 4 * se
    # (50, 0.9) separates the conformal rank 46 from the plain quantile's 45 (0.882 coverage).


def test_conformal_hand_example() -> None:
    scores = np.array([[3, 10], [1, 50], [4, 20], [1, 40], [5, 30]])  # N=5, two cells
    np.testing.assert_array_equal(conformal_quantile(scores, 0.5), [3.0, 30.0])  # k = 3
    np.testing.assert_array_equal(conformal_quantile(scores, 0.6), [4.0, 40.0])  # k = 4
    np.testing.assert_array_equal(conformal_quantile(scores, 0.8), [5.0, 50.0])  # k = 5
    out = conformal_quantile(scores, 0.5)
    assert out.dtype == np.float64
    assert out.shape == (2,)


def test_conformal_keeps_trailing_shape() -> None:
    scores = np.random.default_rng(0).exponential(size=(30, 4, 3)).astype(np.float32)
    q = conformal_quantile(scores, 0.9)  # k = ceil(31 * 0.9) = 28
    assert q.shape == (4, 3)
    assert q.dtype == np.float64
    np.testing.assert_array_equal(q, np.sort(scores.astype(np.float64), axis=0)[27])


def test_conformal_rank_is_robust_to_float_error() -> None:
    # 100 * 0.55 is 55.00000000000001 in floating point; the rank is still 55, not 56.
    scores = np.random.default_rng(1).permutation(np.arange(1.0, 100.0))  # N = 99
    assert conformal_quantile(scores, 0.55) == 55.0
    assert conformal_quantile(scores, 0.9) == 90.0


def test_conformal_accepts_negative_scores() -> None:
    # CQR scores max(lower - y, y - upper) are negative inside the band.
    scores = np.array([-3.0, -1.0, 0.5, -2.0, 2.0])
    assert conformal_quantile(scores, 0.5) == -1.0  # k = 3 of [-3, -2, -1, 0.5, 2]


@pytest.mark.parametrize(("level", "need"), [(0.8, 4), (0.95, 19), (0.9, 9), (0.99, 99)])
def test_too_few_windows(level: float, need: int) -> None:
    assert min_calibration_windows(level) == need
    scores = np.arange(float(need))
    assert conformal_quantile(scores, level) == need - 1  # k = N: the largest score
    with pytest.raises(DataError) as info:
        conformal_quantile(scores[:-1], level)
    assert str(info.value) == (
        f"the validation split has {need - 1} windows; a {level:g} conformal interval needs "
        f"at least {need}; raise val_fraction or lower the level"
    )


def test_too_few_windows_message_for_095() -> None:
    with pytest.raises(DataError, match=r"^the validation split has 18 windows; a 0\.95 "):
        conformal_quantile(np.ones((18, 2, 3)), 0.95)
    assert conformal_quantile(np.ones((19, 2, 3)), 0.95).shape == (2, 3)


def test_min_calibration_windows_agrees_with_exact_arithmetic() -> None:
    for i in range(1, 1000):
        level = i / 1000
        need = min_calibration_windows(level)
        assert exact_rank(need, level) <= need, level
        assert need == 1 or exact_rank(need - 1, level) > need - 1, level
        conformal_quantile(np.zeros(need), level)  # must not raise
        if need > 1:
            with pytest.raises(DataError):
                conformal_quantile(np.zeros(need - 1), level)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_conformal_rejects_bad_level(level: float) -> None:
    with pytest.raises(ConfigError, match="'level'"):
        conformal_quantile(np.ones(50), level)
    with pytest.raises(ConfigError, match="'level'"):
        min_calibration_windows(level)


def test_conformal_rejects_bad_scores() -> None:
    with pytest.raises(ConfigError, match=r"'scores'.*NaN"):
        conformal_quantile(np.array([1.0, np.nan, 2.0]), 0.5)
    with pytest.raises(ConfigError, match="'scores'"):
        conformal_quantile(np.float64(1.0), 0.5)
    with pytest.raises(DataError, match=r"^the validation split has 0 windows"):
        conformal_quantile(np.zeros((0, 3)), 0.5)


# --------------------------------------------------------------------------------------------
# pinball and interval_score
# --------------------------------------------------------------------------------------------


def test_pinball_hand_values() -> None:
    y = np.array([3.0, 0.0, 1.0])  # above, below and at the quantile q = 1
    np.testing.assert_allclose(pinball(y, 1.0, 0.9), [1.8, 0.1, 0.0])
    np.testing.assert_allclose(pinball(y, 1.0, 0.1), [0.2, 0.9, 0.0])
    np.testing.assert_allclose(pinball(y, 1.0, 0.5), [1.0, 0.5, 0.0])  # half the abs error
    np.testing.assert_allclose(pinball(2.0, [1.0, 3.0], [0.25, 0.75]), [0.25, 0.25])
    assert pinball(y, 1.0, 0.9).dtype == np.float64


def test_pinball_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="'tau'"):
        pinball(1.0, 0.0, 1.5)
    with pytest.raises(ConfigError, match="broadcast"):
        pinball(np.zeros(3), np.zeros(2), 0.5)
    with pytest.raises(ConfigError, match="'quantile'"):
        pinball(1.0, np.inf, 0.5)


def test_interval_score_hand_values() -> None:
    # [1, 3] at level 0.8: alpha 0.2, penalty 2 / alpha = 10 per unit of miss.
    y = np.array([0.0, 2.0, 3.0, 1.0, 4.5])  # below, inside, both edges, above
    np.testing.assert_allclose(interval_score(y, 1.0, 3.0, 0.8), [12.0, 2.0, 2.0, 2.0, 17.0])
    # level 0.5: penalty 4 per unit
    np.testing.assert_allclose(interval_score(y, 1.0, 3.0, 0.5), [6.0, 2.0, 2.0, 2.0, 8.0])
    # zero-width interval: width 0, only the penalty
    assert interval_score(2.0, 2.0, 2.0, 0.9) == 0.0


def test_interval_score_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match=r"'lower'.*'upper'"):
        interval_score(0.0, 2.0, 1.0, 0.8)
    with pytest.raises(ConfigError, match="'level'"):
        interval_score(0.0, 1.0, 2.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    level=st.floats(0.01, 0.99),
    data=st.data(),
)
def test_interval_score_is_at_least_the_width(
    shape: tuple[int, int], level: float, data: st.DataObject
) -> None:
    values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    y = data.draw(arrays(np.float64, shape, elements=values))
    lower = data.draw(arrays(np.float64, shape, elements=values))
    width = data.draw(arrays(np.float64, shape, elements=st.floats(0, 1e6)))
    upper = lower + width
    score = interval_score(y, lower, upper, level)
    assert np.all(score >= upper - lower)
    inside = np.clip(y, lower, upper)
    np.testing.assert_array_equal(interval_score(inside, lower, upper, level), upper - lower)
    outside = (y < lower) | (y > upper)
    assert np.all(score[~outside] == (upper - lower)[~outside])


# --------------------------------------------------------------------------------------------
# interval_metrics
# --------------------------------------------------------------------------------------------

LEVELS = (0.5, 0.8, 0.95)


def test_interval_metrics_true_gaussian_quantiles_are_calibrated() -> None:
    actual, mu, sigma = gaussian_case(0)
    lower, upper = gaussian_bands(mu, sigma, LEVELS)
    result = interval_metrics(actual, lower, upper, LEVELS, ["a", "b"])
    n_cells = actual.size
    for level in LEVELS:
        block = result["overall"][level_key(level)]
        se = math.sqrt(level * (1 - level) / n_cells)
        assert abs(block["coverage"] - level) <= 3 * se
        assert block["calibrated"] is True
        np.testing.assert_allclose(
            block["width"], float(np.mean(upper - lower, axis=(0, 1, 2))[LEVELS.index(level)])
        )
    for name in ("a", "b"):
        block = result["per_variable"][name]["80%"]
        assert abs(block["coverage"] - 0.8) <= 3 * math.sqrt(0.16 / (actual.size / 2))


def test_interval_metrics_rewards_the_true_quantiles() -> None:
    actual, mu, sigma = gaussian_case(1)
    exact = interval_metrics(actual, *gaussian_bands(mu, sigma, LEVELS), LEVELS)["overall"]
    narrow = interval_metrics(actual, *gaussian_bands(mu, sigma, LEVELS, 0.5), LEVELS)["overall"]
    wide = interval_metrics(actual, *gaussian_bands(mu, sigma, LEVELS, 2.0), LEVELS)["overall"]
    for key in ("50%", "80%", "95%"):
        assert narrow[key]["coverage"] < exact[key]["coverage"] < wide[key]["coverage"]
        assert narrow[key]["width"] < exact[key]["width"] < wide[key]["width"]
        # Both are proper scores: the true quantiles beat bands too narrow and too wide.
        assert exact[key]["interval_score"] < min(
            narrow[key]["interval_score"], wide[key]["interval_score"]
        )
        assert exact[key]["pinball"] < min(narrow[key]["pinball"], wide[key]["pinball"])
        assert narrow[key]["calibrated"] is False
        assert wide[key]["calibrated"] is False


def test_interval_metrics_hand_case_and_layout() -> None:
    # One window, two steps, one variable; the 80% band [1, 3].
    actual = np.array([[[0.0], [2.0]]])
    lower = np.full((1, 2, 1, 1), 1.0)
    upper = np.full((1, 2, 1, 1), 3.0)
    result = interval_metrics(actual, lower, upper, [0.8], ["x"])
    assert set(result) == {"overall", "per_variable", "per_horizon"}
    assert list(result["per_variable"]) == ["x"]
    assert list(result["per_horizon"]) == ["1", "2"]
    # Step 1: y = 0 below the band. Pinball: lower at tau 0.1 -> 0.9, upper at 0.9 -> 0.3.
    assert result["per_horizon"]["1"]["80%"] == pytest.approx(
        {"level": 0.8, "coverage": 0.0, "width": 2.0, "interval_score": 12.0, "pinball": 0.6}
        | {"calibrated": False}
    )
    # Step 2: y = 2 inside. Pinball: 0.1 and 0.1.
    assert result["per_horizon"]["2"]["80%"] == pytest.approx(
        {"level": 0.8, "coverage": 1.0, "width": 2.0, "interval_score": 2.0, "pinball": 0.1}
        | {"calibrated": False}
    )
    overall = result["overall"]["80%"]
    assert set(overall) == BLOCK_KEYS
    assert overall == pytest.approx(
        {"level": 0.8, "coverage": 0.5, "width": 2.0, "interval_score": 7.0, "pinball": 0.35}
        | {"calibrated": False}
    )
    assert result["per_variable"]["x"] == result["overall"]


def test_interval_metrics_is_json_safe_with_plain_types() -> None:
    actual, mu, sigma = gaussian_case(2, n=20)
    lower, upper = gaussian_bands(mu, sigma, LEVELS)
    result = interval_metrics(
        actual.astype(np.float32), lower.astype(np.float32), upper.astype(np.float32), LEVELS
    )
    assert list(result["overall"]) == ["50%", "80%", "95%"]
    assert list(result["per_variable"]) == ["0", "1"]
    assert list(result["per_horizon"]) == ["1", "2", "3"]
    assert json.loads(json.dumps(result, allow_nan=False)) == result

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        else:
            assert type(node) in (float, bool)

    walk(result)


@pytest.mark.parametrize(
    ("coverage_count", "calibrated"), [(39, True), (41, True), (38, False), (42, False)]
)
def test_calibrated_is_within_two_points_inclusive(coverage_count: int, calibrated: bool) -> None:
    # 50 cells at level 0.8: 39/50 = 0.78 and 41/50 = 0.82 are exactly 2 points away.
    # The covered cells sit on the edges: the interval is closed.
    actual = np.where(np.arange(50) % 2 == 0, -1.0, 1.0).reshape(50, 1, 1)
    actual[coverage_count:] = 5.0  # outside [-1, 1]
    lower = np.full((50, 1, 1, 1), -1.0)
    upper = np.full((50, 1, 1, 1), 1.0)
    block = interval_metrics(actual, lower, upper, [0.8])["overall"]["80%"]
    assert block["coverage"] == pytest.approx(coverage_count / 50)
    assert block["calibrated"] is calibrated


def test_level_keys() -> None:
    assert level_key(0.8) == "80%"
    assert level_key(0.975) == "97.5%"
    assert level_key(0.5) == "50%"
    assert level_key(0.999) == "99.9%"
    assert level_key(0.7) == "70%"  # 0.7 * 100 is 70.00000000000001


def test_interval_metrics_shape_errors() -> None:
    actual = np.zeros((4, 3, 2))
    band = np.zeros((4, 3, 2, 2))
    ok = (actual, band - 1, band + 1, [0.8, 0.95])
    interval_metrics(*ok)  # the valid case passes
    cases: list[tuple[tuple[Any, ...], str]] = [
        ((np.zeros((4, 3)), band - 1, band + 1, [0.8, 0.95]), "'actual'"),
        ((actual, np.zeros((4, 3, 2, 3)), band + 1, [0.8, 0.95]), "'lower'"),
        ((actual, band - 1, np.zeros((4, 3, 2)), [0.8, 0.95]), "'upper'"),
        ((actual, band - 1, band + 1, [0.8]), r"'lower'.*K = len\(levels\)"),
        ((actual, band - 1, band + 1, [0.95, 0.8]), r"'levels'.*ascending"),
        ((actual, band - 1, band + 1, [0.8, 1.0]), "'levels'"),
        ((actual, band + 1, band - 1, [0.8, 0.95]), r"'lower'.*<= 'upper'"),
    ]
    for args, pattern in cases:
        with pytest.raises(ValueError, match=pattern) as info:
            interval_metrics(*args)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="'columns'"):
        interval_metrics(*ok, columns=["only_one"])


# --------------------------------------------------------------------------------------------
# crps_from_quantiles
# --------------------------------------------------------------------------------------------


def test_crps_matches_closed_form_gaussian() -> None:
    actual, mu, sigma = gaussian_case(3, n=200)
    taus = midpoint_taus(99)
    result = crps_from_quantiles(actual, gaussian_quantiles(mu, sigma, taus), taus, ["a", "b"])
    exact = gaussian_crps(actual, mu, sigma)
    assert result["overall"] == pytest.approx(float(exact.mean()), rel=1e-3)
    for v, name in enumerate(["a", "b"]):
        assert result["per_variable"][name] == pytest.approx(float(exact[:, :, v].mean()), rel=1e-3)
    assert list(result["per_horizon"]) == ["1", "2", "3"]
    for h in range(3):
        assert result["per_horizon"][str(h + 1)] == pytest.approx(
            float(exact[:, h].mean()), rel=1e-3
        )
    # Few taus: a coarser approximation, still in the right place.
    few = midpoint_taus(9)
    coarse = crps_from_quantiles(actual, gaussian_quantiles(mu, sigma, few), few)["overall"]
    assert coarse == pytest.approx(float(exact.mean()), rel=0.05)
    assert abs(coarse - exact.mean()) > abs(result["overall"] - exact.mean())


def test_crps_is_smaller_for_a_better_forecast() -> None:
    actual, mu, sigma = gaussian_case(4, n=200)
    taus = midpoint_taus(19)
    right = crps_from_quantiles(actual, gaussian_quantiles(mu, sigma, taus), taus)["overall"]
    shifted = crps_from_quantiles(actual, gaussian_quantiles(mu + sigma, sigma, taus), taus)
    vague = crps_from_quantiles(actual, gaussian_quantiles(mu, 3 * sigma, taus), taus)
    assert right < shifted["overall"]
    assert right < vague["overall"]


def test_crps_hand_value_and_crossings() -> None:
    # One cell, y = 0, quantiles 1 and 2 at taus 0.25 and 0.75:
    # pinball 0.75 * 1 and 0.25 * 2 -> mean 0.625 -> CRPS 1.25.
    actual = np.zeros((1, 1, 1))
    ordered = np.array([[[[1.0, 2.0]]]])
    assert crps_from_quantiles(actual, ordered, [0.25, 0.75])["overall"] == pytest.approx(1.25)
    crossed = ordered[..., ::-1]  # put in order before scoring
    assert crps_from_quantiles(actual, crossed, [0.25, 0.75]) == crps_from_quantiles(
        actual, ordered, [0.25, 0.75]
    )


def test_crps_shape_errors() -> None:
    actual = np.zeros((2, 3, 1))
    with pytest.raises(ConfigError, match=r"'quantiles'.*Q = len\(taus\)"):
        crps_from_quantiles(actual, np.zeros((2, 3, 1, 4)), [0.1, 0.5, 0.9])
    with pytest.raises(ConfigError, match=r"'taus'.*ascending"):
        crps_from_quantiles(actual, np.zeros((2, 3, 1, 2)), [0.9, 0.1])
    with pytest.raises(ConfigError, match="'taus'"):
        crps_from_quantiles(actual, np.zeros((2, 3, 1, 2)), [0.0, 0.5])
    with pytest.raises(ConfigError, match="'actual'"):
        crps_from_quantiles(np.zeros((2, 3)), np.zeros((2, 3, 1, 2)), [0.1, 0.9])


# --------------------------------------------------------------------------------------------
# verdict
# --------------------------------------------------------------------------------------------


def block(coverage: float, width: float, score: float, calibrated: bool) -> dict[str, Any]:
    return {
        "level": 0.8,
        "coverage": coverage,
        "width": width,
        "interval_score": score,
        "pinball": 0.3,
        "calibrated": calibrated,
    }


def test_verdict_sentences() -> None:
    model = {"80%": block(0.791, 1.234, 2.05, True)}
    naive = {"80%": block(0.85, 2.5, 2.61, False)}
    assert interval_verdict(model, naive) == [
        "80% interval: coverage 0.791 (calibrated: within 2 points of 0.8), mean width 1.23, "
        "interval score 2.05 against repeat_last's 2.61 (sharper than naive)"
    ]
    worse = {"80%": block(0.65, 0.0123, 3.4, False)}
    assert interval_verdict(worse, naive) == [
        "80% interval: coverage 0.650 (NOT calibrated: more than 2 points from 0.8), "
        "mean width 0.0123, interval score 3.40 against repeat_last's 2.61 "
        "(not sharper than naive)"
    ]


def test_verdict_from_interval_metrics() -> None:
    actual, mu, sigma = gaussian_case(5)
    model = interval_metrics(actual, *gaussian_bands(mu, sigma, LEVELS), LEVELS)["overall"]
    naive = interval_metrics(actual, *gaussian_bands(mu, sigma, LEVELS, 2.5), LEVELS)["overall"]
    lines = interval_verdict(model, naive)
    assert [line.split(" ")[0] for line in lines] == ["50%", "80%", "95%"]
    assert all("(calibrated: within 2 points of" in line for line in lines)
    assert all(line.endswith("(sharper than naive)") for line in lines)
    backwards = interval_verdict(naive, model)
    assert all("NOT calibrated" in line for line in backwards)
    assert all(line.endswith("(not sharper than naive)") for line in backwards)


def test_verdict_rejects_different_levels() -> None:
    with pytest.raises(ConfigError, match="same levels"):
        interval_verdict({"80%": block(0.8, 1, 2, True)}, {"95%": block(0.95, 1, 2, True)})


def test_sharper() -> None:
    assert sharper({"interval_score": 1.0}, {"interval_score": 2.0}) is True
    assert sharper({"interval_score": 2.0}, {"interval_score": 2.0}) is False
    assert sharper({"interval_score": 3.0}, {"interval_score": 2.0}) is False
    assert sharper({"interval_score": None}, {"interval_score": 2.0}) is False
