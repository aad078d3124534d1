"""A model trained on returns forecasts price levels: rebuilt exactly from the last observed
level, reported in levels and in the trained space, saved and loaded, and never reading a
price after the forecast origin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lstmcast
from lstmcast.errors import ConfigError
from lstmcast.workflows.forecaster import Forecaster

FAST = {"epochs": 2, "batch_size": 16, "seed": 0, "device": "cpu"}


def prices(rows: int = 260, seed: int = 0) -> pd.DataFrame:
    """A geometric random walk with a weekly pattern in its returns, and a volume."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    returns = 0.004 * np.sin(2 * np.pi * t / 5) + rng.normal(0, 0.01, rows)
    return pd.DataFrame(
        {
            "date": pd.bdate_range("2022-01-03", periods=rows),
            "close": 100 * np.exp(np.cumsum(returns)),
            "volume": 1e6 * np.exp(rng.normal(0, 0.2, rows)),
        }
    )


def fitted(frame: pd.DataFrame, **options) -> Forecaster:
    options = {"lookback": 10, "horizon": 3, **FAST, **options}
    return Forecaster("lstm", **options).fit(frame)


def test_forecasts_are_levels_rebuilt_from_the_last_observed_price():
    frame = prices()
    fc = fitted(frame, transform="close=log-returns,volume=log")
    table = fc.forecast_table(frame)
    close = table[table.variable == "close"]
    # repeat_last in levels is the last observed price, and the actual is the price itself
    by_time = frame.set_index("date")["close"]
    np.testing.assert_allclose(close.repeat_last, by_time[close.origin].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(close.actual, by_time[close.time].to_numpy(), rtol=1e-6)
    # step h compounds the h forecast log-returns from the origin's price
    one = close[close.origin == close.origin.iloc[0]].sort_values("step")
    rebuilt = one.repeat_last.iloc[0] * np.exp(np.cumsum(one.forecast_transformed))
    np.testing.assert_allclose(one.forecast, rebuilt, rtol=1e-6)
    future = fc.predict(frame)
    assert len(future) == 3 and (future.close > 0).all()


def test_log_returns_make_the_forecast_scale_free():
    """Prices times 7 have the same log-returns: the same model, forecasts times 7."""
    frame = prices()
    scaled = frame.assign(close=frame.close * 7)
    a = fitted(frame, targets=["close"], transform="log-returns").predict(frame)
    b = fitted(scaled, targets=["close"], transform="log-returns").predict(scaled)
    np.testing.assert_allclose(b.close, 7 * a.close, rtol=1e-4)


def test_the_report_has_both_spaces_and_the_market_measures():
    frame = prices()
    fc = fitted(frame, targets=["close"], transform="log-returns")
    report = fc.evaluate(frame)
    assert report["transform"] == {"close": "log-returns"}
    # levels first: repeat_last is the random walk on prices
    table = fc.forecast_table(frame)
    mse = float(((table.repeat_last - table.actual) ** 2).mean())
    assert report["repeat_last"]["original"]["mse"] == pytest.approx(mse, rel=1e-6)
    # the trained space: repeat_last repeats the last return there
    trained = report["transformed"]
    trained_mse = float(((table.actual_transformed - table.forecast_transformed) ** 2).mean())
    assert trained["model"]["original"]["mse"] == pytest.approx(trained_mse, rel=1e-5)
    assert "market" in report  # implied by a returns transform
    assert set(report["market"]) >= {"hit_rate", "theil_u2", "trading"}


def test_a_price_after_the_origin_never_reaches_its_forecast():
    frame = prices()
    fc = fitted(frame, targets=["close"], transform="log-returns")
    before = fc.forecast_table(frame)
    cut = frame.date.iloc[-20]
    changed = frame.copy()
    changed.loc[changed.date >= cut, "close"] *= 1.5  # the future, perturbed
    after = fc.forecast_table(changed)
    early = before.origin < cut
    assert early.sum() > 0 and (~early).sum() > 0
    np.testing.assert_array_equal(before[early].forecast, after[early].forecast)
    assert not np.allclose(before[~early].forecast, after[~early].forecast)


def test_save_and_load_keep_the_transform(tmp_path):
    frame = prices()
    fc = fitted(frame, transform="close=returns", market=True)
    fc.save(tmp_path / "m")
    loaded = lstmcast.load(tmp_path / "m", device="cpu")
    pd.testing.assert_frame_equal(loaded.predict(frame), fc.predict(frame))
    assert loaded.evaluate(frame)["market"] == fc.evaluate(frame)["market"]


def test_intervals_map_through_a_log_and_refuse_a_cumulative_transform():
    frame = prices()
    fc = fitted(frame, targets=["close"], transform="log", intervals=[0.8])
    future = fc.predict(frame)
    assert (future.close_lower_80 < future.close).all()
    assert (future.close < future.close_upper_80).all()
    with pytest.raises(ConfigError, match="--transform log-returns are not built yet"):
        Forecaster("lstm", transform="log-returns", intervals=[0.8])


def test_every_reference_preset_trains_on_returns():
    frame = prices(120)
    for name in ("simple", "stacked", "bidirectional", "seglstm", "linear"):
        options = {"model_options": {"segment": 5}} if name == "seglstm" else {}
        fc = Forecaster(
            name,
            lookback=10,
            horizon=1,
            transform="log-returns",
            targets=["close"],
            **FAST,
            **options,
        ).fit(frame)
        assert np.isfinite(fc.predict(frame).close).all(), name
