"""Prediction intervals: coverage on known noise, the calibration through save/load, no test
row in the calibration, every method's refusals, the CLI's columns and errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import lstmcast
from lstmcast.cli import app
from lstmcast.errors import ConfigError, DataError


def noisy_sine(rows: int = 3000, seed: int = 0, sigma: float = 0.5) -> pd.DataFrame:
    """A daily cycle plus i.i.d. Gaussian noise: the residuals of seasonal_naive are i.i.d."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    return pd.DataFrame(
        {
            "time": pd.date_range("2024-01-01", periods=rows, freq="h"),
            "y": 10 + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, sigma, rows),
        }
    )


def test_conformal_coverage_lands_within_sampling_error_of_the_level():
    frame = noisy_sine()
    fc = lstmcast.Forecaster(
        "seasonal_naive", lookback=24, horizon=2, period=24, intervals=(0.8, 0.95)
    ).fit(frame)
    metrics = fc.evaluate(frame)
    n = metrics["n_windows"]
    for key, level in (("80%", 0.8), ("95%", 0.95)):
        coverage = metrics["intervals"]["model"]["overall"][key]["coverage"]
        se = (level * (1 - level) / n) ** 0.5  # windows overlap little at horizon 2
        assert abs(coverage - level) < 4 * se + 0.01, (key, coverage)
    # repeat_last has its own band, wider here (it ignores the cycle)
    model = metrics["intervals"]["model"]["scaled"]["80%"]
    naive = metrics["intervals"]["repeat_last"]["scaled"]["80%"]
    assert model["interval_score"] < naive["interval_score"]


def test_the_calibration_reads_no_test_row():
    frame = noisy_sine(rows=1200)
    base = lstmcast.Forecaster("seasonal_naive", lookback=24, period=24, intervals=(0.9,))
    calibrated = base.fit(frame).state_.calibration
    changed = frame.copy()
    test_start = base.split_.test[0]
    changed.loc[test_start:, "y"] *= 100.0  # the future, perturbed
    again = lstmcast.Forecaster("seasonal_naive", lookback=24, period=24, intervals=(0.9,))
    other = again.fit(changed).state_.calibration
    assert calibrated is not None and other is not None
    np.testing.assert_array_equal(calibrated.model, other.model)
    np.testing.assert_array_equal(calibrated.naive, other.naive)


def test_calibration_round_trips_through_save_and_load(tmp_path):
    frame = noisy_sine(rows=800)
    fc = lstmcast.Forecaster("linear", lookback=24, horizon=3, epochs=2, intervals=(0.8, 0.95)).fit(
        frame
    )
    fc.save(tmp_path / "m")
    loaded = lstmcast.load(tmp_path / "m", device="cpu")
    a, b = fc.state_.calibration, loaded.state_.calibration
    assert a is not None and b is not None
    assert (a.method, a.levels, a.n_windows) == (b.method, b.levels, b.n_windows)
    np.testing.assert_array_equal(a.model, b.model)
    np.testing.assert_array_equal(a.naive, b.naive)
    assert fc.evaluate(frame)["intervals"] == loaded.evaluate(frame)["intervals"]
    future = loaded.predict(frame)
    assert list(future.columns) == ["y", "y_lower_80", "y_upper_80", "y_lower_95", "y_upper_95"]
    assert (future["y_lower_95"] <= future["y_lower_80"]).all()
    assert (future["y_lower_80"] <= future["y"]).all() and (
        future["y"] <= future["y_upper_80"]
    ).all()


def test_mc_dropout_needs_dropout_and_then_gives_bands():
    frame = noisy_sine(rows=600)
    with pytest.raises(ConfigError, match="mc-dropout needs dropout"):
        lstmcast.Forecaster(
            "simple", lookback=12, epochs=1, intervals=(0.8,), interval_method="mc-dropout"
        ).fit(frame)
    fc = lstmcast.Forecaster(
        "stacked",
        lookback=12,
        epochs=1,
        layers=(8, 4),
        intervals=(0.8,),
        interval_method="mc-dropout",
        mc_samples=8,
    ).fit(frame)
    table = fc.forecast_table(frame)
    assert (table["upper_80"] > table["lower_80"]).all()


def test_quantile_methods_refuse_models_without_a_quantile_head():
    with pytest.raises(ConfigError, match="needs a model with a quantile head"):
        lstmcast.Forecaster(
            "linear", lookback=12, epochs=1, intervals=(0.8,), interval_method="quantile"
        ).fit(noisy_sine(rows=400))


def test_too_few_validation_windows_and_uncalibrated_levels_are_named():
    frame = noisy_sine(rows=200)
    with pytest.raises(DataError, match="needs at least 19"):
        lstmcast.Forecaster("repeat_last", lookback=12, val_fraction=0.05, intervals=(0.95,)).fit(
            frame
        )
    fc = lstmcast.Forecaster("repeat_last", lookback=12, intervals=(0.8,)).fit(frame)
    with pytest.raises(ConfigError, match=r"0\.9 is not among them"):
        fc.evaluate(frame, intervals=(0.9,))
    plain = lstmcast.Forecaster("repeat_last", lookback=12).fit(frame)
    with pytest.raises(ConfigError, match="has no interval calibration"):
        plain.predict(frame, intervals=(0.8,))


def test_cli_intervals_columns_and_one_line_errors(tmp_path):
    data = tmp_path / "s.csv"
    noisy_sine(rows=600).to_csv(data, index=False)
    run = tmp_path / "run"
    runner = CliRunner()
    args = ["train", str(data), "--model", "linear", "--lookback", "24", "--horizon", "2"]
    result = runner.invoke(
        app, [*args, "--epochs", "2", "--intervals", "0.8,0.95", "--out", str(run), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert "80% interval: coverage" in result.stdout
    table = pd.read_csv(run / "forecast_test.csv")
    assert {"lower_80", "upper_80", "lower_95", "upper_95"} <= set(table.columns)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["intervals"]["method"] == "conformal"
    assert (run / "forecast_future.png").is_file()
    result = runner.invoke(app, ["predict", str(run), str(data), "--intervals", "0.8"])
    assert result.exit_code == 0, result.output
    assert "y_lower_80" in result.stdout.splitlines()[0]
    for bad, message in (
        (["evaluate", str(run), str(data), "--intervals", "0.9"], "not among them"),
        ([*args, "--intervals", "1.5", "--out", str(tmp_path / "x"), "-q"], "levels in (0, 1)"),
        ([*args, "--quantiles", "0.9,0.1", "--out", str(tmp_path / "x"), "-q"], "increasing"),
    ):
        result = runner.invoke(app, bad)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.parametrize("method", ["quantile", "cqr"])
def test_quantile_head_methods_end_to_end(method, tmp_path):
    frame = noisy_sine(rows=1500)
    fc = lstmcast.Forecaster(
        "lstm",
        lookback=24,
        horizon=2,
        layers=(16,),
        activation="tanh",
        epochs=6,
        lr=0.01,
        batch_size=64,
        intervals=(0.8,),
        interval_method=method,
    ).fit(frame)
    metrics = fc.evaluate(frame)
    report = metrics["intervals"]
    assert report["method"] == method
    coverage = report["model"]["overall"]["80%"]["coverage"]
    assert 0.6 < coverage < 0.95, coverage  # a short training: loose, but not a constant band
    table = fc.forecast_table(frame)
    assert (table["lower_80"] <= table["upper_80"]).all()
    fc.save(tmp_path / "m")
    loaded = lstmcast.load(tmp_path / "m", device="cpu")
    assert loaded.evaluate(frame)["intervals"] == report
    if method == "cqr":
        assert fc.state_.calibration.model.shape == (1, 2, 1)


def shifted_sine(rows: int = 3000, seed: int = 1) -> pd.DataFrame:
    """noisy_sine with more noise in the test split (its last 20% of rows): validation never
    sees it."""
    frame = noisy_sine(rows, seed)
    rng = np.random.default_rng(seed + 100)
    tail = slice(int(rows * 0.8), rows)
    frame.loc[frame.index[tail], "y"] += rng.normal(0, 0.9, rows - int(rows * 0.8))
    return frame


def test_adaptive_conformal_restores_coverage_under_a_shift(tmp_path):
    frame = shifted_sine()
    options = dict(lookback=24, horizon=2, period=24, intervals=(0.8,))
    plain = lstmcast.Forecaster("seasonal_naive", **options).fit(frame)
    adaptive = lstmcast.Forecaster("seasonal_naive", adaptive_gamma=0.01, **options).fit(frame)
    static = plain.evaluate(frame)["intervals"]["model"]["overall"]["80%"]["coverage"]
    moving = adaptive.evaluate(frame)["intervals"]["model"]["overall"]["80%"]["coverage"]
    assert static < 0.7  # the shift breaks split-conformal's promise
    assert abs(moving - 0.8) < 0.03, moving
    adaptive.save(tmp_path / "m")
    loaded = lstmcast.load(tmp_path / "m", device="cpu")
    assert loaded.evaluate(frame)["intervals"] == adaptive.evaluate(frame)["intervals"]
    future = loaded.predict(frame)
    static_future = plain.predict(frame)
    # after the misses of the test period the adaptive band is wider than the static one
    assert (future["y_upper_80"] - future["y_lower_80"]).mean() > (
        static_future["y_upper_80"] - static_future["y_lower_80"]
    ).mean()


def test_an_adaptive_width_uses_only_outcomes_known_at_its_origin():
    from lstmcast.workflows.calibration import Calibration, adaptive_widths

    rng = np.random.default_rng(0)
    H, V, N = 3, 2, 60
    grid = np.sort(rng.exponential(size=(1, 201, H, V)), axis=1)
    calibration = Calibration(
        "conformal",
        (0.8,),
        100,
        np.ones((1, H, V)),
        np.ones((1, H, V)),
        gamma=0.05,
        score_grid=grid,
    )
    scores = rng.exponential(size=(N, H, V))
    widths, _ = adaptive_widths(calibration, 0.8, scores)
    i = 30
    later = scores.copy()
    for j in range(N):
        for h in range(H):
            if j + h + 1 > i:  # not known at window i's origin
                later[j, h] = 1e6
    np.testing.assert_array_equal(
        adaptive_widths(calibration, 0.8, later)[0][: i + 1], widths[: i + 1]
    )
    assert not np.array_equal(adaptive_widths(calibration, 0.8, later)[0], widths)


def test_spread_intervals_need_an_ensemble():
    options = dict(lookback=24, epochs=1, intervals=(0.8,), interval_method="spread")
    with pytest.raises(ConfigError, match="needs --ensemble K"):
        lstmcast.Forecaster("seglstm", **options)
    with pytest.raises(ConfigError, match="adaptive_gamma"):
        lstmcast.Forecaster("seglstm", ensemble=3, adaptive_gamma=0.01, **options)


def test_spread_band_is_a_validation_quotient_times_each_windows_spread(tmp_path):
    from lstmcast.evaluation.intervals import conformal_quantile
    from lstmcast.workflows.calibration import SPREAD_FLOOR, member_outputs

    frame = noisy_sine(rows=700)
    options = dict(lookback=24, horizon=2, epochs=2, ensemble=3, seed=0, intervals=(0.8,))
    fc = lstmcast.Forecaster("seglstm", interval_method="spread", **options).fit(frame)
    calibration = fc.state_.calibration
    # the quotient is the conformal quantile of |residual| / (spread + floor) on validation,
    # computed here from the members' own forecasts
    fitted, (first, end) = fc.state_, fc.split_.val
    values = frame[["y"]].to_numpy()
    scaled = torch.from_numpy(fitted.scaler.transform_rows(values, np.zeros(len(values), int)))
    starts = np.arange(first, end - 2 + 1) - 24  # every validation row is forecast
    members = member_outputs(fitted.model, scaled.float(), starts, 24, fitted.layout, 2)
    members = members.astype(np.float64)
    actual = np.stack([scaled[s + 24 : s + 26].numpy() for s in starts]).astype(np.float64)
    assert len(starts) == calibration.n_windows
    spread = members.std(axis=-1)
    floor = SPREAD_FLOOR * np.median(spread, axis=0)
    scores = np.abs(actual - members.mean(axis=-1)) / (spread + floor)
    np.testing.assert_allclose(calibration.spread_floor, floor, rtol=1e-5)
    np.testing.assert_allclose(calibration.model[0], conformal_quantile(scores, 0.8), rtol=1e-4)
    # the point forecast is the plain ensemble's; the band's width follows the spread
    plain = lstmcast.Forecaster("seglstm", interval_method="conformal", **options).fit(frame)
    table, other = fc.forecast_table(frame), plain.forecast_table(frame)
    np.testing.assert_array_equal(table["forecast"], other["forecast"])
    width = (table["upper_80"] - table["lower_80"])[table["step"] == 1]
    assert width.std() > 0.05 * width.mean()  # conformal's is one width per step
    assert (other["upper_80"] - other["lower_80"])[other["step"] == 1].std() < 1e-6
    # on the validation windows it covers (at least) the level, as split-conformal promises
    held = fc.forecast_table(frame, "val")
    half = (held["upper_80"] - held["lower_80"]) / 2
    assert ((held["actual"] - held["forecast"]).abs() <= half * (1 + 1e-5)).mean() >= 0.8
    fc.save(tmp_path / "m")
    loaded = lstmcast.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(loaded.state_.calibration.spread_floor, calibration.spread_floor)
    assert loaded.evaluate(frame)["intervals"] == fc.evaluate(frame)["intervals"]
    future = loaded.predict(frame)
    assert (future["y_lower_80"] < future["y"]).all() and (future["y"] < future["y_upper_80"]).all()


def test_the_spread_calibration_reads_no_test_row():
    frame = noisy_sine(rows=700)
    options = dict(lookback=24, horizon=2, epochs=2, ensemble=3, seed=0, intervals=(0.8,))
    fc = lstmcast.Forecaster("seglstm", interval_method="spread", **options)
    calibration = fc.fit(frame).state_.calibration
    changed = frame.copy()
    changed.loc[fc.split_.test[0] :, "y"] *= 100.0  # the future, perturbed
    again = lstmcast.Forecaster("seglstm", interval_method="spread", **options).fit(changed)
    np.testing.assert_array_equal(calibration.model, again.state_.calibration.model)
    np.testing.assert_array_equal(calibration.spread_floor, again.state_.calibration.spread_floor)


def test_cli_spread_intervals_and_their_refusal(tmp_path):
    data = tmp_path / "s.csv"
    noisy_sine(rows=500).to_csv(data, index=False)
    runner = CliRunner()
    args = ["train", str(data), "--lookback", "24", "--epochs", "1", "--intervals", "0.8"]
    args += ["--interval-method", "spread", "-q"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x")])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "--ensemble K" in lines[0], result.stderr
    result = runner.invoke(app, [*args, "--ensemble", "2", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["intervals"]["method"] == "spread"
    assert metrics["intervals"]["model"]["overall"]["80%"]["width"] > 0
