"""The Diebold-Mariano test with the HLN correction, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstmcast.evaluation.significance import diebold_mariano, t_two_sided_p


def test_student_t_p_values_match_the_tables():
    # two-sided 5% critical values of Student's t (any statistics table)
    for t, df in ((12.706, 1), (2.5706, 5), (2.2281, 10), (1.9600, 10**7)):
        assert t_two_sided_p(t, df) == pytest.approx(0.05, abs=2e-5)
    assert t_two_sided_p(0.0, 7) == pytest.approx(1.0)


def test_the_statistic_for_a_small_fixed_error_series_at_horizon_one():
    model = np.array([1.0, 2.0, 3.0, 2.0, 1.0, 2.0])
    naive = np.ones(6)
    # d = e1^2 - e2^2 = [0, 3, 8, 3, 0, 3]; mean 17/6; gamma0 = sum((d - mean)^2) / 6
    mean = 17 / 6
    gamma0 = sum((v - mean) ** 2 for v in (0, 3, 8, 3, 0, 3)) / 6  # 7.138888...
    dm = mean / math.sqrt(gamma0 / 6)  # 2.5975...
    hln = dm * math.sqrt((6 + 1 - 2 + 0) / 6)  # 2.3712...
    result = diebold_mariano(model, naive, horizon=1)
    assert result["statistic"] == pytest.approx(hln) == pytest.approx(2.37118, abs=1e-4)
    assert result["mean_differential"] == pytest.approx(mean)
    assert result["p_value"] == pytest.approx(t_two_sided_p(hln, 5))
    assert 0.05 < result["p_value"] < 0.07 and result["verdict"] == "not distinguishable"


def test_the_long_run_variance_uses_the_horizons_lags():
    d_model = np.array([0.5, 1.5, 0.2, 0.9, 1.1, 0.3, 0.8, 1.4, 0.1, 0.6])
    naive = np.zeros(10)
    d = d_model**2
    n, h = 10, 2
    c = d - d.mean()
    gamma0 = float(c @ c) / n
    gamma1 = float(c[1:] @ c[:-1]) / n
    expected = d.mean() / math.sqrt((gamma0 + 2 * gamma1) / n)
    expected *= math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    result = diebold_mariano(d_model, naive, horizon=2)
    assert result["lags"] == 1 and result["statistic"] == pytest.approx(expected)
    assert result["verdict"] == "worse"  # its squared errors are all above zero's


def test_a_clearly_better_model_is_called_better_and_too_few_origins_say_so():
    rng = np.random.default_rng(0)
    actual_noise = rng.normal(0, 1, (200, 3, 2))
    better = diebold_mariano(0.5 * actual_noise, actual_noise, horizon=3, loss="absolute")
    assert better["verdict"] == "better" and better["p_value"] < 1e-6
    few = diebold_mariano(np.ones(4), np.zeros(4), horizon=3)
    assert few["statistic"] is None and "too few origins" in few["verdict"]


def test_origins_of_one_time_count_once_with_their_mean_differential():
    """Many series forecast from each date: with `times` the test runs on the mean loss
    differential per date, the same as one origin per date holding every series."""
    rng = np.random.default_rng(3)
    n_times, n_series = 40, 3
    model = rng.normal(0, 1.0, (n_times, n_series, 2, 1))
    reference = rng.normal(0, 1.3, (n_times, n_series, 2, 1))
    per_date = diebold_mariano(model, reference, 2)
    order = rng.permutation(n_times * n_series)  # stacked series by series, then shuffled
    stacked_model = model.transpose(1, 0, 2, 3).reshape(-1, 2, 1)[order]
    stacked_reference = reference.transpose(1, 0, 2, 3).reshape(-1, 2, 1)[order]
    times = np.tile(np.arange(n_times), n_series)[order] * 3600
    grouped = diebold_mariano(stacked_model, stacked_reference, 2, times=times)
    assert grouped["n"] == n_times
    assert grouped["statistic"] == pytest.approx(per_date["statistic"], rel=1e-12)
    assert grouped["p_value"] == pytest.approx(per_date["p_value"], rel=1e-12)
    pooled = diebold_mariano(stacked_model, stacked_reference, 2)  # each origin its own draw
    assert pooled["n"] == n_times * n_series
