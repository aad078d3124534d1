"""The seeded synthetic generators: repeatable, and carrying the structure they promise."""

from __future__ import annotations

import numpy as np
import pandas as pd


def test_synthetic_prices_carry_the_momentum_they_are_given():
    from lstmcast.datasets.synthetic import synthetic_prices

    def lag1(frame):
        r = np.diff(np.log(frame[frame.ticker == "T00"].close.to_numpy()))
        return float(np.corrcoef(r[1:], r[:-1])[0, 1])

    a = synthetic_prices(2, 3000, seed=3, momentum=0.3)
    pd.testing.assert_frame_equal(a, synthetic_prices(2, 3000, seed=3, momentum=0.3))
    assert (a.close > 0).all() and a.date.dt.dayofweek.max() == 4  # business days
    assert 0.22 < lag1(a) < 0.38
    assert abs(lag1(synthetic_prices(2, 3000, seed=3, momentum=0.0))) < 0.08


def _fit_ar1(x):
    """Least-squares (intercept, slope) of x[t] on x[t-1]."""
    slope, intercept = np.polyfit(x[:-1], x[1:], 1)
    return intercept, slope


def test_wide_generators_are_seeded_dated_and_named():
    from lstmcast.datasets import synthetic as s

    makers = {
        s.synthetic_seasonal: {"freq": "D"},
        s.synthetic_two_seasons: {"freq": "D"},
        s.synthetic_regime_shift: {"freq": "W"},
        s.synthetic_random_walk: {"freq": "D"},
        s.synthetic_ar1: {"freq": "MS"},
    }
    for make, options in makers.items():
        a = make(120, seed=4, targets=("u", "v"), **options)
        pd.testing.assert_frame_equal(a, make(120, seed=4, targets=("u", "v"), **options))
        assert not a.equals(make(120, seed=5, targets=("u", "v"), **options))
        assert list(a.columns) == ["date", "u", "v"] and len(a) == 120
        assert pd.infer_freq(pd.DatetimeIndex(a.date)) is not None
        assert np.isfinite(a[["u", "v"]].to_numpy()).all()
        assert not np.allclose(a.u, a.v)  # each target draws its own level, phase and noise


def test_seasonal_carries_its_period_trend_and_noise():
    from lstmcast.datasets.synthetic import synthetic_seasonal

    a = synthetic_seasonal(700, seed=0, period=7, trend=0.01, noise=0.1).y.to_numpy()
    assert 0.005 < np.polyfit(np.arange(700), a, 1)[0] < 0.015
    detrended = a - np.polyval(np.polyfit(np.arange(700), a, 1), np.arange(700))
    seasonal = detrended[7:] - detrended[:-7]  # one season back: only noise is left
    assert np.std(seasonal) < 0.2 < np.std(detrended[1:] - detrended[:-1])
    noisy = synthetic_seasonal(700, seed=0, period=7, noise=1.0).y.to_numpy()
    assert np.std(noisy[7:] - noisy[:-7]) > 1.2


def test_two_seasons_has_both_cycles():
    from lstmcast.datasets.synthetic import synthetic_two_seasons

    a = synthetic_two_seasons(730, seed=1, noise=0.0).y.to_numpy()
    spectrum = np.abs(np.fft.rfft(a - a.mean()))
    frequencies = np.fft.rfftfreq(730)
    strongest = frequencies[np.argsort(spectrum)[-2:]]
    assert np.any(np.abs(strongest - 1 / 7) < 0.005)
    assert np.any(np.abs(strongest - 1 / 365.25) < 0.003)


def test_regime_shift_moves_level_and_slope_at_the_break():
    from lstmcast.datasets.synthetic import synthetic_regime_shift

    a = synthetic_regime_shift(400, seed=2, at=0.5, level_change=3.0, slope_after=0.02).y
    before, after = a.iloc[150:200].to_numpy(), a.iloc[200:250].to_numpy()
    assert 2.0 < after.mean() - before.mean() < 4.5
    assert abs(np.polyfit(np.arange(200), a.iloc[:200], 1)[0]) < 0.005
    assert 0.015 < np.polyfit(np.arange(200), a.iloc[200:], 1)[0] < 0.025


def test_random_walk_and_ar1_have_the_dependence_they_promise():
    from lstmcast.datasets.synthetic import synthetic_ar1, synthetic_random_walk

    walk = synthetic_random_walk(3000, seed=3, step=1.0).y.to_numpy()
    steps = np.diff(walk)
    assert 0.9 < np.std(steps) < 1.1 and abs(np.corrcoef(steps[1:], steps[:-1])[0, 1]) < 0.06
    ar = synthetic_ar1(3000, seed=3, freq="D", phi=0.3, mean=10.0).y.to_numpy()
    intercept, slope = _fit_ar1(ar)
    assert 0.25 < slope < 0.35 and abs(intercept / (1 - slope) - 10) < 0.1
    assert abs(ar.mean() - 10) < 0.1


def test_wide_generators_refuse_bad_parameters():
    import pytest

    from lstmcast.datasets.synthetic import synthetic_ar1, synthetic_regime_shift
    from lstmcast.errors import ConfigError

    with pytest.raises(ConfigError, match="phi"):
        synthetic_ar1(100, phi=1.0)
    with pytest.raises(ConfigError, match="'at'"):
        synthetic_regime_shift(100, at=1.5)
    with pytest.raises(ConfigError, match="distinct"):
        synthetic_ar1(100, targets=("y", "y"))
    with pytest.raises(ConfigError, match="n_rows"):
        synthetic_ar1(3)
