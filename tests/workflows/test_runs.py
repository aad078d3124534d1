"""A run reads its data once and forecasts its test split once; compare checks every model's
options before the first one trains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmcast.config import make_config
from lstmcast.errors import ConfigError
from lstmcast.workflows import calibration, fitting, runs


def test_a_run_reads_and_validates_its_data_once_and_forecasts_test_once(
    csv_file, tmp_path, monkeypatch
):
    opened, validated, forecast_sets = [], [], []
    real_read = Path.read_bytes

    def counting_read(self):
        if self.resolve() == Path(csv_file).resolve():
            opened.append(self)
        return real_read(self)

    real_prepare, real_predict = fitting.prepare_panel, calibration.predict_windows

    def counting_prepare(*args, **kwargs):
        validated.append(1)
        return real_prepare(*args, **kwargs)

    def counting_predict(model, series, starts, lookback, *args, **kwargs):
        forecast_sets.append(len(starts))
        return real_predict(model, series, starts, lookback, *args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", counting_read)
    monkeypatch.setattr(fitting, "prepare_panel", counting_prepare)
    monkeypatch.setattr(calibration, "predict_windows", counting_predict)
    config = make_config({"model": "linear", "lookback": 12, "horizon": 2, "epochs": 2})
    out = tmp_path / "run"
    metrics = runs.train_run(csv_file, config, out)

    assert len(opened) == 1 and len(validated) == 1
    # the test split once, then the one window after the data for forecast_future.png
    assert forecast_sets == [metrics["n_windows"], 1]
    # the table and the metrics come from the same forecasts
    table = pd.read_csv(out / "forecast_test.csv")
    mse = float(np.mean((table["forecast"] - table["actual"]) ** 2))
    assert mse == pytest.approx(metrics["model"]["original"]["mse"], rel=1e-5)
    assert json.loads((out / "metrics.json").read_text())["n_windows"] == metrics["n_windows"]
    assert (out / "forecast.png").is_file()


def test_compare_checks_every_model_before_the_first_trains(csv_file, monkeypatch):
    trained = []
    real_train = fitting.train

    def counting_train(*args, **kwargs):
        trained.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(fitting, "train", counting_train)
    base = make_config({"lookback": 12, "horizon": 2, "epochs": 1})  # seasonal_naive: 24
    with pytest.raises(ConfigError, match=r"'period' parameter .* must be <= the lookback"):
        runs.compare_models(csv_file, base, ["linear", "seasonal_naive"], None)
    assert trained == []


def test_a_row_number_column_is_not_forecast_and_the_run_says_so(tmp_path):
    import numpy as np
    import pandas as pd

    from lstmcast.config import make_config
    from lstmcast.workflows.runs import train_run

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"rownames": np.arange(1, 121), "y": rng.normal(size=120).cumsum()})
    path = tmp_path / "r_export.csv"
    frame.to_csv(path, index=False)
    metrics = train_run(path, make_config({"model": "linear", "epochs": 2}), tmp_path / "run")
    assert list(metrics["model"]["per_variable"]) == ["y"]
    assert any("rownames number the rows" in n for n in metrics["notes"])
    assert any("no time column" in n for n in metrics["notes"])
