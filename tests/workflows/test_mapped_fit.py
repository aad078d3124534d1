"""Training on a memory-mapped table: the same model as in memory, bit for bit; the run, the
saved model and predict; no leakage from the test rows; the options it refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_frame
from typer.testing import CliRunner

from lstmcast import Forecaster
from lstmcast.cli.app import app
from lstmcast.config import RunConfig
from lstmcast.errors import ConfigError
from lstmcast.workflows.forecaster import load
from lstmcast.workflows.runs import train_run

OPTIONS = {"lookback": 12, "horizon": 2, "epochs": 2, "batch_size": 64, "seed": 3}
MODELS = [("simple", {"layers": (8,)}), ("seglstm", {"model_options": {"hidden": 16}})]


@pytest.fixture
def data_file(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("LSTMCAST_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "series.parquet"
    make_frame(300).to_parquet(path, index=False)
    return str(path)


def weights(forecaster: Forecaster) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in forecaster.model_.state_dict().items()}


@pytest.mark.parametrize(("model", "extra"), MODELS)
def test_a_mapped_fit_is_the_in_memory_fit(data_file, model, extra):
    kw = OPTIONS | extra | {"targets": ("load", "temp", "price")}
    if model != "seglstm":
        kw["covariates"] = ("hour",)
    memory = Forecaster(model, **kw).fit(data_file)
    mapped = Forecaster(model, memmap=True, **kw).fit(data_file)
    a, b = weights(memory), weights(mapped)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("center", "scale"):
        np.testing.assert_array_equal(
            getattr(memory.state_.scaler, name), getattr(mapped.state_.scaler, name)
        )
    np.testing.assert_array_equal(memory.state_.naive_mae_scaled, mapped.state_.naive_mae_scaled)
    assert memory.state_.split.to_dict() == mapped.state_.split.to_dict()
    assert memory.config.lookback == mapped.config.lookback
    table = mapped.state_  # the test split of both, forecast from their own data paths
    assert table.n_train_windows == memory.state_.n_train_windows
    report_memory = memory.evaluate(data_file)
    from lstmcast.workflows.mapped import map_for

    report_mapped = mapped.report(mapped.backtest(map_for(mapped.config, data_file))[0])
    assert report_mapped["n_windows"] == report_memory["n_windows"]
    assert report_mapped["model"]["scaled"]["mse"] == pytest.approx(
        report_memory["model"]["scaled"]["mse"], rel=1e-12
    )
    assert report_mapped["repeat_last"]["original"]["mae"] == pytest.approx(
        report_memory["repeat_last"]["original"]["mae"], rel=1e-6
    )


def test_stride_thins_every_split_of_a_mapped_table(data_file):
    memory = Forecaster("simple", layers=(8,), stride=3, **OPTIONS).fit(data_file)
    mapped = Forecaster("simple", layers=(8,), stride=3, memmap=True, **OPTIONS).fit(data_file)
    assert mapped.state_.n_train_windows == memory.state_.n_train_windows
    assert len(mapped.training_.history) == len(memory.training_.history)
    test_memory = memory.evaluate(data_file)["n_windows"]
    from lstmcast.workflows.mapped import map_for

    table = map_for(mapped.config, data_file)
    test_mapped = mapped.report(mapped.backtest(table)[0])["n_windows"]
    assert test_mapped == -(-test_memory // 3)


def test_changing_the_test_rows_changes_nothing_learned(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMCAST_CACHE_DIR", str(tmp_path / "cache"))
    frame = make_frame(300)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    frame.to_csv(first, index=False)
    test_rows = slice(int(300 * 0.8), None)  # the default test fraction, 0.2
    frame.iloc[test_rows, 1:] = frame.iloc[test_rows, 1:] * 10 + 100
    frame.to_csv(second, index=False)
    a = Forecaster("simple", layers=(8,), memmap=True, **OPTIONS).fit(str(first))
    b = Forecaster("simple", layers=(8,), memmap=True, **OPTIONS).fit(str(second))
    assert a.state_.data_sha256 != b.state_.data_sha256
    np.testing.assert_array_equal(a.state_.scaler.center, b.state_.scaler.center)
    np.testing.assert_array_equal(a.state_.scaler.scale, b.state_.scaler.scale)
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_mapped_run_writes_a_model_that_predicts_from_a_recent_table(data_file, tmp_path):
    config = RunConfig(model="simple", layers=(8,), memmap=True, intervals=(0.8,), **OPTIONS)
    metrics = train_run(data_file, config, tmp_path / "run")
    assert "memory-mapped" in metrics["notes"][-1]
    assert 0 <= metrics["intervals"]["model"]["overall"]["80%"]["coverage"] <= 1
    assert metrics["intervals"]["calibration_windows"] > 0
    for name in ("model.safetensors", "forecast_test.csv", "forecast_future.png", "run.json"):
        assert (tmp_path / "run" / name).exists()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["memmap"] is True
    recent = make_frame(300).iloc[-40:]
    ahead = load(tmp_path / "run").predict(recent)
    assert len(ahead) == 2 and np.isfinite(ahead[["load", "temp"]].to_numpy()).all()


@pytest.mark.parametrize(
    ("option", "flag"),
    [
        ({"id_col": "hour"}, "--id-col"),
        ({"future_covariates": ("hour",)}, "--future-covariates"),
        ({"calendar": "hour"}, "--calendar"),
        ({"transform": "diff"}, "--transform"),
        ({"duplicates": "last"}, "--duplicates"),
        ({"scaler": "robust"}, "--scaler robust"),
        ({"fill": "interpolate"}, "--fill interpolate"),
    ],
)
def test_options_that_need_every_row_in_memory_are_refused(data_file, option, flag):
    with pytest.raises(ConfigError, match=flag) as caught:
        Forecaster("simple", memmap=True, **OPTIONS, **option).fit(data_file)
    assert "\n" not in str(caught.value)


def test_a_dataframe_is_refused(frame):
    with pytest.raises(ConfigError, match="maps a CSV or Parquet file"):
        Forecaster("simple", memmap=True, **OPTIONS).fit(frame)


def test_the_cli_trains_with_memmap_and_refuses_in_one_line(data_file, tmp_path):
    runner = CliRunner()
    args = ["train", data_file, "--memmap", "--model", "simple", "--layers", "8", "--lookback"]
    args += ["12", "--epochs", "1", "--stride", "2", "--out", str(tmp_path / "run")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "memory-mapped" in result.output and "one window in 2" in result.output
    bad = runner.invoke(app, [*args[:-2], "--out", str(tmp_path / "x"), "--id-col", "hour"])
    assert bad.exit_code == 2
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--memmap does not take --id-col" in lines[0]


def test_sparse_windows_train_from_their_rows_alone_to_the_same_model(data_file, monkeypatch):
    from lstmcast.data import mapped as data_mapped
    from lstmcast.workflows import mapped as workflow_mapped

    kw = OPTIONS | {"stride": 40, "layers": (8,), "memmap": True}
    used = []

    def spy(*args, **kwargs):
        result = data_mapped.compact_windows(*args, **kwargs)
        used.append(result is not None)
        return result

    monkeypatch.setattr(workflow_mapped, "compact_windows", spy)
    compact = Forecaster("simple", **kw).fit(data_file)
    monkeypatch.setattr(workflow_mapped, "compact_windows", lambda *a, **k: None)
    whole = Forecaster("simple", **kw).fit(data_file)
    assert used == [True]
    a, b = weights(compact), weights(whole)
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = [
        [(e["train_loss"], e["val_loss"]) for e in f.training_.history] for f in (compact, whole)
    ]
    assert losses[0] == losses[1]
