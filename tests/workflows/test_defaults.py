"""Options left to the data: the lookback from the frequency and length, seglstm's segment,
width and dropout from the training samples; printed, stored, and never the presets' sizes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import lstmcast
from lstmcast.cli import app
from lstmcast.config import make_config
from lstmcast.workflows.defaults import resolve, segment_for, width_for
from lstmcast.workflows.fitting import Columns, read_dataset


def series(rows: int, freq: str | None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"y": np.cumsum(rng.normal(size=rows)), "z": rng.normal(size=rows)})
    if freq is not None:
        frame.insert(0, "date", pd.date_range("2001-01-01", periods=rows, freq=freq))
    return frame


def chosen(model: str, frame: pd.DataFrame, **options) -> dict:
    fitted = lstmcast.Forecaster(model, epochs=1, **options).fit(frame)
    return {c.name: c.value for c in fitted.derived_} | {"config": fitted.config}


@pytest.mark.parametrize(
    ("rows", "freq", "lookback"),
    [
        (600, "h", 96),  # 4 days of hours
        (400, "h", 48),  # 2 days: a quarter of the 280 training rows holds 2
        (400, "D", 28),  # 4 weeks
        (400, "MS", 48),  # 4 years of months
        (120, "QS", 16),  # 4 years of quarters
        (160, "MS", 24),  # 2 years: a quarter of the 112 training rows holds 2
        (400, "W-SUN", 52),  # one year of weeks: all the training rows allow
        (100, "W-SUN", 16),  # a season does not fit: a quarter of the training rows
        (400, None, 32),  # no time column: no season known
    ],
)
def test_the_lookback_follows_the_frequency_and_the_length(rows, freq, lookback):
    assert chosen("linear", series(rows, freq))["lookback"] == lookback


@pytest.mark.parametrize(
    ("rows", "freq", "why"),
    [
        (400, "W-SUN", "1 year of 52 weekly rows"),
        (400, "B", "4 weeks of 5 business-day rows"),
        (600, "h", "4 days of 24 hourly rows"),
        (800, "15min", "1 day of 96 15-minute rows"),
    ],
)
def test_the_reason_counts_its_seasons_in_words(rows, freq, why):
    fitted = lstmcast.Forecaster("linear", epochs=1).fit(series(rows, freq))
    (lookback,) = [c for c in fitted.derived_ if c.name == "lookback"]
    assert lookback.why == why


def test_seasonal_naive_takes_the_frequencys_season_as_the_report_does():
    # it used its own default of 24 rows: 2 years back on monthly data, while the report's
    # seasonal_naive baseline went 1 year back, two rows of one name with different numbers
    monthly = chosen("seasonal_naive", series(300, "MS"))
    assert monthly["period"] == 12 and monthly["config"].period == 12
    fitted = lstmcast.Forecaster("seasonal_naive", epochs=1).fit(series(300, "MS"))
    metrics = fitted.evaluate(series(300, "MS"))
    model, baseline = metrics["model"]["scaled"], metrics["seasonal_naive"]["scaled"]
    assert model["mse"] == pytest.approx(baseline["mse"], rel=1e-6)  # float32 against float64
    assert "period" not in chosen("seasonal_naive", series(300, "MS"), period=6)
    assert chosen("seasonal_naive", series(300, "D"), lookback=12)["period"] == 7
    # a week does not fit 4 rows: the model's own 24 stays, and its error names --period
    with pytest.raises(lstmcast.ConfigError, match="'period' parameter \\(24\\) must be <="):
        chosen("seasonal_naive", series(300, "D"), lookback=4)
    assert "period" not in chosen("linear", series(300, "MS"))


def test_given_options_are_kept_and_the_presets_keep_their_sizes():
    frame = series(400, "D")
    assert "lookback" not in chosen("linear", frame, lookback=10)
    picked = chosen("stacked", frame)
    assert set(picked) == {"lookback", "config"}  # the Keras sizes are the preset's definition
    assert picked["config"].layers is None and picked["config"].dropout is None
    lstm = chosen("lstm", frame, layers=(8,))
    assert "layers" not in lstm and lstm["config"].layers == (8,) and "dropout" in lstm


def test_seglstm_segments_divide_the_lookback_and_fit_the_season():
    assert segment_for(28, 7) == 7 and segment_for(96, 24) == 24 and segment_for(52, 52) == 26
    assert segment_for(16, None) == 4 and segment_for(13, None) == 13  # a prime: one segment
    picked = chosen("seglstm", series(400, "D"))
    assert picked["segment"] == 7 and picked["config"].model_options["segment"] == 7
    assert (
        chosen("seglstm", series(400, "D"), model_options={"segment": 4})["config"].model_options[
            "segment"
        ]
        == 4
    )


def test_the_width_grows_with_the_training_samples():
    assert width_for(100, 128, 512, 128) == 128 and width_for(10**6, 128, 512, 128) == 512

    def picked(rows: int) -> dict:  # chosen without training
        config = make_config({"model": "seglstm"})
        panel = read_dataset(series(rows, "h"), Columns.of(config)).panel
        return {c.name: c.value for c in resolve(config, panel)[1]}

    small, large = picked(300), picked(40000)
    assert small["hidden"] == 128 and large["hidden"] == 512
    assert small["dropout"] == 0.1 and large["dropout"] == 0.5


def test_the_choice_reads_row_counts_not_values():
    frame = series(400, "D")
    later = frame.copy()
    later.loc[later.index[-100:], "y"] *= 1000.0  # the future, scaled out of all proportion
    a, b = chosen("seglstm", frame), chosen("seglstm", later)
    assert {k: v for k, v in a.items() if k != "config"} == {
        k: v for k, v in b.items() if k != "config"
    }


def test_the_cli_prints_and_stores_what_it_chose(tmp_path):
    data = tmp_path / "data.csv"
    series(300, "D").to_csv(data, index=False)
    out = tmp_path / "run"
    args = ["train", str(data), "--model", "seglstm", "--epochs", "1", "--out", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "chosen from the data: lookback 28" in " ".join(result.output.split())
    run = json.loads((out / "run.json").read_text())
    assert {d["name"] for d in run["derived"]} == {"lookback", "segment", "hidden", "dropout"}
    assert run["config"]["lookback"] == 28 and run["config"]["model_options"]["segment"] == 7
    assert lstmcast.load(out).config.lookback == 28
