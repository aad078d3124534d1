"""The contract every model meets through Forecaster, plus save/load and repeatability."""

import numpy as np
import pandas as pd
import pytest

import lstmcast
from lstmcast import Forecaster, ModelFileError, NotFittedError
from lstmcast.models import MODELS


def options(name: str) -> dict:
    extra = {"period": 12} if name == "seasonal_naive" else {}
    if name in ("simple", "stacked", "bidirectional", "lstm"):
        extra["layers"] = (8,) if name != "stacked" else (8, 4)
    if name == "seglstm":
        extra["model_options"] = {"hidden": 16, "segment": 4}
    return {"epochs": 2, "batch_size": 64, **extra}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract(name, frame, tmp_path):
    # seglstm is channel-independent: it refuses past covariates (see the test below)
    covariates = [] if name == "seglstm" else ["hour"]
    targets = ["load", "temp", "price"]
    forecaster = Forecaster(
        name, lookback=12, horizon=3, targets=targets, covariates=covariates, **options(name)
    )
    with pytest.raises(NotFittedError, match="not fitted"):
        forecaster.predict(frame)
    assert forecaster.fit(frame) is forecaster

    result, _series = forecaster.backtest(frame)
    n_test = len(frame) - int(len(frame) * 0.7) - int(len(frame) * 0.1)
    assert result.predicted_scaled.shape == (n_test - 3 + 1, 3, 3)  # every test window counted
    metrics = forecaster.evaluate(frame)
    assert {"model", "repeat_last", "skill"} <= set(metrics)
    for section in ("scaled", "original"):
        assert {"mse", "mae"} <= set(metrics["model"][section])
    assert set(metrics["model"]["per_variable"]) == {"load", "temp", "price"}

    future = forecaster.predict(frame)
    assert list(future.columns) == ["load", "temp", "price"]
    assert len(future) == 3
    assert future.index[0] == frame["date"].iloc[-1] + pd.Timedelta(hours=1)

    forecaster.save(tmp_path / "model")
    loaded = lstmcast.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.predict(frame), future)
    np.testing.assert_array_equal(
        loaded.backtest(frame)[0].predicted_scaled, result.predicted_scaled
    )


def test_seglstm_refuses_past_covariates_by_name(frame):
    with pytest.raises(lstmcast.ConfigError, match=r"seglstm .* past covariates \(hour\)"):
        Forecaster("seglstm", lookback=12, covariates=["hour"], **options("seglstm")).fit(frame)


def test_repeat_last_matches_the_naive_section(frame):
    metrics = Forecaster("repeat_last", lookback=6, horizon=2).fit(frame).evaluate(frame)
    assert metrics["model"]["scaled"] == metrics["repeat_last"]["scaled"]
    assert metrics["skill"] == 0.0 and not metrics["beats_naive"]
    assert "does NOT beat" in metrics["verdict"]


def test_fit_is_repeatable_with_a_seed(frame):
    def run(seed):
        fc = Forecaster("stacked", lookback=8, horizon=2, epochs=2, layers=(8, 4), seed=seed)
        return fc.fit(frame).predict(frame).to_numpy()

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_scaler_is_fit_on_train_rows_only(frame):
    fc = Forecaster("repeat_last", lookback=6).fit(frame)
    changed = frame.copy()
    changed.loc[len(frame) - 10 :, "load"] += 1000.0  # only test rows change
    fc2 = Forecaster("repeat_last", lookback=6).fit(changed)
    np.testing.assert_array_equal(fc.scaler_.center, fc2.scaler_.center)
    n_train = fc.split_.train[1]
    np.testing.assert_allclose(fc.scaler_.center[0], frame["load"].iloc[:n_train].mean(), rtol=1e-5)


def test_predict_needs_the_trained_columns(frame, tmp_path):
    fc = Forecaster("linear", lookback=6, epochs=1).fit(frame)
    with pytest.raises(lstmcast.DataError, match="lacks column 'temp'"):
        fc.predict(frame.drop(columns=["temp"]))


def test_load_refuses_foreign_and_corrupt_files(frame, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        lstmcast.load(tmp_path / "nothing")
    Forecaster("linear", lookback=6, epochs=1).fit(frame).save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x80\x04 not a safetensors file")
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        lstmcast.load(tmp_path / "m")
    Forecaster("linear", lookback=6, epochs=1).fit(frame).save(tmp_path / "m")
    config = tmp_path / "m" / "config.json"
    config.write_text(config.read_text().replace('"format_version": 3', '"format_version": 99'))
    with pytest.raises(ModelFileError, match="format version 99"):
        lstmcast.load(tmp_path / "m")
    config.write_text("{}")
    with pytest.raises(ModelFileError, match="not an lstmcast model"):
        lstmcast.load(tmp_path / "m")


def test_load_refuses_weights_that_do_not_match(frame, tmp_path):
    Forecaster("linear", lookback=6, epochs=1).fit(frame).save(tmp_path / "a")
    Forecaster("linear", lookback=8, epochs=1).fit(frame).save(tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").write_bytes(
        (tmp_path / "b" / "model.safetensors").read_bytes()
    )
    with pytest.raises(ModelFileError, match="has shape"):
        lstmcast.load(tmp_path / "a")


def test_public_api():
    assert set(lstmcast.__all__) >= {"Forecaster", "load", "DataError", "ModelFileError"}


def test_predict_continues_on_trading_days_and_numbers_irregular_steps():
    days = pd.bdate_range("2024-01-02", periods=120)
    days = days[days != pd.Timestamp("2024-02-19")]  # Washington's Birthday: NYSE closed
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"date": days, "close": 100 + np.cumsum(rng.normal(0, 1, len(days)))})
    fc = Forecaster("linear", lookback=5, horizon=3, epochs=1).fit(frame)
    assert fc.state_.freq == "B"
    last = days[-1]  # a Friday
    forecast = fc.predict(frame)
    assert list(forecast.index) == list(pd.bdate_range(last, periods=4)[1:])
    assert forecast.index.name == "date"
    assert "--exchange" in forecast.attrs["note"]  # weekdays, holidays among them
    on_market = Forecaster("linear", lookback=5, horizon=3, epochs=1, exchange="XNYS")
    assert "note" not in on_market.fit(frame).predict(frame).attrs
    messy = frame.iloc[[i for i in range(len(frame)) if i % 7 not in (2, 3, 4)]].copy()
    messy.loc[messy.index[5], "date"] = pd.Timestamp("2024-01-13")  # a Saturday
    messy = messy.sort_values("date")
    irregular = Forecaster("linear", lookback=5, horizon=3, epochs=1).fit(messy).predict(messy)
    assert list(irregular.index) == [1, 2, 3] and irregular.index.name == "step"
    assert "follow no regular frequency" in irregular.attrs["note"]
