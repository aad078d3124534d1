"""The standard benchmark protocol: splits, windows reaching back, train-only z-score, metrics."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lstmcast.cli import app
from lstmcast.data import split_windows
from lstmcast.errors import ConfigError
from lstmcast.workflows.benchmark import load_protocol, protocol_split, run_benchmark

SHARED_DATA = Path(__file__).parents[3] / "shared" / "data"  # ../shared beside the repo


def synthetic_csv(path: Path, rows: int = 200, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=rows, freq="h"),
            "a": np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.1, rows),
            "b": np.cumsum(rng.normal(0, 1, rows)),
            "OT": 5 + np.cos(2 * np.pi * t / 12) + rng.normal(0, 0.2, rows),
        }
    ).to_csv(path, index=False)
    return path


def test_row_splits_of_each_protocol():
    hourly = protocol_split("ett-hourly", 17420)
    assert (hourly.train, hourly.val, hourly.test) == ((0, 8640), (8640, 11520), (11520, 14400))
    minute = protocol_split("ett-minute", 69680)
    assert (minute.train, minute.val, minute.test) == ((0, 34560), (34560, 46080), (46080, 57600))
    ratio = protocol_split("ratio", 7588)  # exchange_rate: 5311 / 760 / 1517
    assert (ratio.train, ratio.val, ratio.test) == ((0, 5311), (5311, 6071), (6071, 7588))
    with pytest.raises(ConfigError, match="'protocol' parameter must be one of ett-hourly"):
        protocol_split("daily", 100)


def test_windows_reach_back_before_the_boundary():
    split = protocol_split("ratio", 200)  # train [0, 140), val [140, 160), test [160, 200)
    L, H = 12, 5
    train = split_windows(split, "train", L, H)
    val = split_windows(split, "val", L, H)
    test = split_windows(split, "test", L, H)
    assert (train[0], train[-1], len(train)) == (0, 140 - L - H, 140 - L - H + 1)
    # val/test: targets start at the boundary, inputs are the L rows before it
    assert (val[0], val[-1], len(val)) == (140 - L, 160 - L - H, 20 - H + 1)
    assert (test[0], test[-1], len(test)) == (160 - L, 200 - L - H, 40 - H + 1)


def test_z_score_uses_train_rows_and_population_std(tmp_path):
    path = synthetic_csv(tmp_path / "s.csv")
    data = load_protocol(path, "ratio")
    raw = pd.read_csv(path)[["a", "b", "OT"]].to_numpy()
    train = raw[:140]
    expected = (raw - train.mean(axis=0)) / train.std(axis=0, ddof=0)
    np.testing.assert_allclose(data.scaled, expected, rtol=1e-4, atol=1e-4)
    assert data.scaled.dtype == np.float32 and data.columns == ("a", "b", "OT")


def test_repeat_last_scores_every_window_on_the_z_scale(tmp_path):
    path = synthetic_csv(tmp_path / "s.csv")
    (row,) = run_benchmark(path, "ratio", ["repeat_last"], [5], lookback=12)
    data = load_protocol(path, "ratio")
    starts = split_windows(data.split, "test", 12, 5)
    actual = np.stack([data.scaled[s + 12 : s + 17] for s in starts])  # (N, H, V)
    last = np.stack([data.scaled[s + 11] for s in starts])[:, None, :]  # (N, 1, V)
    assert row["n_test_windows"] == len(starts) == 36
    assert row["mse"] == pytest.approx(float(np.mean((actual - last) ** 2)), rel=1e-5)
    assert row["mae"] == pytest.approx(float(np.mean(np.abs(actual - last))), rel=1e-5)
    assert {"model", "horizon", "lookback", "seed", "train_seconds", "val_mse"} <= set(row)


@pytest.mark.skipif(
    not (SHARED_DATA / "ETTh1.csv").is_file(), reason=f"shared data absent: {SHARED_DATA}"
)
def test_repeat_last_reproduces_the_published_etth1_row():
    (row,) = run_benchmark(SHARED_DATA / "ETTh1.csv", "ett-hourly", ["repeat_last"], [96], 96)
    assert (round(row["mse"], 3), round(row["mae"], 3)) == (1.294, 0.713)
    assert row["n_test_windows"] == 2785


def test_cli_benchmark_json(tmp_path):
    path = synthetic_csv(tmp_path / "s.csv", rows=240)
    args = ["benchmark", str(path), "--protocol", "ratio", "--models", "repeat_last,seglstm"]
    args += ["--horizons", "6,12", "--lookback", "24", "--epochs", "1", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert [(r["model"], r["horizon"], r["seed"]) for r in rows] == [
        (m, h, 0) for m in ("repeat_last", "seglstm") for h in (6, 12)
    ]
    assert all({"mse", "mae", "train_seconds"} <= set(r) for r in rows)
    assert all(r["epochs_run"] == 1 for r in rows if r["model"] == "seglstm")


def test_cli_benchmark_table_and_user_errors(tmp_path):
    path = synthetic_csv(tmp_path / "s.csv")
    args = ["benchmark", str(path), "--protocol", "ratio", "--horizons", "5", "--lookback", "12"]
    result = CliRunner().invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "repeat_last" in result.stdout and "±" in result.stdout
    bad = CliRunner().invoke(app, [*args[:4], "--protocol", "weekly"])
    assert bad.exit_code == 2 and "'protocol' parameter must be one of" in bad.output
    bad = CliRunner().invoke(app, [*args, "--horizons", "five"])
    assert bad.exit_code == 2 and "'horizons' option must be a comma-separated list" in bad.output


def test_every_model_is_checked_before_the_first_trains(tmp_path, monkeypatch):
    from lstmcast.errors import ConfigError
    from lstmcast.workflows import benchmark

    trained = []
    monkeypatch.setattr(benchmark, "fit_model", lambda *a, **k: trained.append(1))
    path = synthetic_csv(tmp_path / "s.csv")
    with pytest.raises(ConfigError, match=r"'period' parameter \(24\) must be <= the lookback"):
        run_benchmark(path, "ratio", ["linear", "seasonal_naive"], [5], lookback=12)
    assert trained == []


def test_a_stopped_run_goes_on_from_its_checkpoint_to_the_uninterrupted_result(
    tmp_path, monkeypatch
):
    """benchmarks/accuracy.py gives each run a checkpoint directory: a run stopped after two
    epochs (a session's time limit) resumes there and scores what one run without a stop
    scores, bit for bit on the CPU, and its row says where it went on from."""
    from lstmcast.workflows import benchmark

    data = load_protocol(synthetic_csv(tmp_path / "s.csv", rows=240), "ratio")
    options = {"epochs": 4, "patience": 0, "batch_size": 16, "device": "cpu", "ensemble": 2}
    args = (data, "seglstm", 6, 24, 0)
    whole = benchmark.run_one(*args, options=options)
    fit = benchmark.fit_model

    def stopped_after_two(*a, **k):
        def stop(epoch):  # killed during epoch 3: the state saved is epoch 2's
            if epoch.number == 3:
                raise KeyboardInterrupt

        return fit(*a, **{**k, "callbacks": [*k["callbacks"], stop]})

    monkeypatch.setattr(benchmark, "fit_model", stopped_after_two)
    state = tmp_path / "state"
    with pytest.raises(KeyboardInterrupt):
        benchmark.run_one(*args, options=options, checkpoint=state)
    assert (state / "state.json").is_file()
    monkeypatch.setattr(benchmark, "fit_model", fit)
    resumed = benchmark.run_one(*args, options=options, checkpoint=state)
    assert resumed["resumed_after_epoch"] == 2 and resumed["epochs_run"] == 4
    assert (resumed["mse"], resumed["val_mse"]) == (whole["mse"], whole["val_mse"])
    assert resumed["epoch_seconds"] > 0
    other = benchmark.run_one(data, "seglstm", 6, 24, 1, options=options, checkpoint=state)
    assert other["resumed_after_epoch"] == 0  # another run's state is not taken
