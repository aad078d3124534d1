"""The baselines beside every model: repeat_last, each series' train mean, and seasonal_naive
when a season is given or found; the verdict names the best of them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import lstmcast
from lstmcast.evaluation.baselines import (
    BaselineState,
    baseline_forecasts,
    detect_season,
    frequency_season,
)


@pytest.mark.parametrize(
    ("freq", "season"),
    [("h", 24), ("2h", 12), ("15min", 96), ("D", 7), ("B", 5), ("W-SUN", 52), ("MS", 12)],
)
def test_the_season_of_a_frequency(freq, season):
    assert frequency_season(freq) == season


@pytest.mark.parametrize("freq", [None, "YS", "3D", "s", "not a frequency"])
def test_frequencies_without_a_usual_season(freq):
    assert frequency_season(freq) is None


def test_a_season_is_found_only_where_the_differences_repeat():
    rng = np.random.default_rng(0)
    t = np.arange(400)
    weekly = (np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.3, 400))[:, None]
    trend = (0.05 * t + rng.normal(0, 0.3, 400))[:, None]  # autocorrelated, not seasonal
    assert detect_season("D", [weekly], lookback=14, given=None) == 7
    assert detect_season("D", [trend], lookback=14, given=None) is None
    assert detect_season("D", [weekly], lookback=5, given=None) is None  # 7 rows do not fit
    assert detect_season(None, [weekly], lookback=14, given=None) is None
    assert detect_season(None, [trend], lookback=14, given=3) == 3  # --period is taken as is


def test_baseline_forecasts_read_only_the_window_and_the_train_mean():
    values = np.arange(40, dtype=float).reshape(20, 2)
    state = BaselineState(np.array([[1.0, 2.0]]), season=3)
    starts = np.array([0, 5])
    out = baseline_forecasts(state, values, np.array([0, 0]), starts, lookback=6, horizon=4)
    assert out["mean"].shape == (2, 4, 2) and (out["mean"] == [1.0, 2.0]).all()
    # step h repeats the row one season before it: rows 3, 4, 5, 3 of the first window
    np.testing.assert_array_equal(out["seasonal_naive"][0, :, 0], values[[3, 4, 5, 3], 0])
    later = values.copy()
    later[6:] = 1e9  # everything after the first window's inputs
    again = baseline_forecasts(state, later, np.array([0, 0]), starts, lookback=6, horizon=4)
    np.testing.assert_array_equal(again["seasonal_naive"][0], out["seasonal_naive"][0])


def noise(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"date": pd.date_range("2021-01-01", periods=rows, freq="D"), "y": rng.normal(5, 1, rows)}
    )


def test_a_flat_line_at_the_mean_beats_repeat_last_but_not_the_best_baseline():
    frame = noise()
    report = lstmcast.Forecaster("mean", lookback=8).fit(frame).evaluate(frame)
    assert report["baselines"] == ["repeat_last", "mean"]  # white noise: no season
    assert report["beats_naive"] and report["best_baseline"] == "mean"
    assert not report["beats_best_baseline"]
    assert "does NOT beat the best simple baseline (mean" in report["verdict"]


def test_the_train_mean_is_learned_on_train_rows_only():
    frame = noise()
    changed = frame.copy()
    changed.loc[changed.index[-60:], "y"] += 100.0  # the test rows
    a = lstmcast.Forecaster("linear", lookback=8, epochs=1).fit(frame).state_.baselines
    b = lstmcast.Forecaster("linear", lookback=8, epochs=1).fit(changed).state_.baselines
    np.testing.assert_array_equal(a.train_mean, b.train_mean)


def test_the_baselines_are_saved_and_an_older_file_reports_repeat_last(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(300)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2021-01-01", periods=300, freq="D"),
            "y": np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.2, 300),
        }
    )
    fitted = lstmcast.Forecaster("linear", lookback=14, epochs=2).fit(frame)
    assert fitted.state_.baselines.season == 7
    path = fitted.save(tmp_path / "m")
    loaded = lstmcast.load(path)
    assert loaded.evaluate(frame)["baselines"] == ["repeat_last", "mean", "seasonal_naive"]
    config = path / "config.json"
    content = json.loads(config.read_text())
    del content["baselines"], content["config_sha256"]
    content["format_version"] = 2  # a file from before the baselines were saved
    config.write_text(json.dumps(content))
    report = lstmcast.load(path).evaluate(frame)
    assert report["baselines"] == ["repeat_last"] and report["best_baseline"] == "repeat_last"


def test_each_variable_gets_its_own_best_baseline_and_skill():
    rng = np.random.default_rng(2)
    frame = noise(seed=2)
    frame["walk"] = np.cumsum(rng.normal(0, 1, len(frame)))  # repeat_last is best here
    report = lstmcast.Forecaster("mean", lookback=8).fit(frame).evaluate(frame)
    noisy, walk = report["per_variable"]["y"], report["per_variable"]["walk"]
    assert noisy["best_baseline"] == "mean" and walk["best_baseline"] == "repeat_last"
    assert noisy["skill_vs_best"] == pytest.approx(0.0, abs=1e-4)  # the model is that baseline
    assert walk["skill_vs_best"] < 0 and not walk["beats_best_baseline"]
    mse = {n: report[n]["per_variable"]["y"]["scaled"]["mse"] for n in ("model", "repeat_last")}
    assert (
        noisy["skill"] == pytest.approx(1 - mse["model"] / mse["repeat_last"])
        and noisy["skill"] > 0
    )
