"""The CLI end to end on a small file, and every user mistake ending in one line + exit 2."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lstmcast.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_train_evaluate_predict_end_to_end(csv_file, tmp_path):
    run = tmp_path / "run"
    result = invoke(
        "train",
        csv_file,
        "--model",
        "simple",
        "--layers",
        "8",
        "--lookback",
        "12",
        "--horizon",
        "2",
        "--epochs",
        "2",
        "--out",
        run,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    for name in (
        "model.safetensors",
        "config.json",
        "metrics.json",
        "forecast_test.csv",
        "forecast.png",
        "run.json",
    ):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"model", "repeat_last", "skill"} <= set(metrics)
    assert metrics["model"]["scaled"]["mse"] > 0 and "per_variable" in metrics["model"]
    run_info = json.loads((run / "run.json").read_text())
    assert run_info["config"]["lookback"] == 12 and "torch" in run_info["versions"]
    table = pd.read_csv(run / "forecast_test.csv")
    assert {"origin", "time", "step", "variable", "actual", "forecast", "repeat_last"} <= set(table)

    result = invoke("evaluate", run, csv_file, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["scaled"]["mse"] == pytest.approx(
        metrics["model"]["scaled"]["mse"], rel=1e-6
    )

    result = invoke("evaluate", run, csv_file)  # the table: one row per variable, own units
    assert result.exit_code == 0, result.output
    assert "per variable (4; original units)" in result.output
    assert "mean over 4 variables in their own units" in result.output
    verdicts = json.loads(invoke("evaluate", run, csv_file, "--json").stdout)["per_variable"]
    rows = [line.replace("│", " ").split() for line in result.output.splitlines()]
    for name in ("load", "temp", "price", "hour"):
        (row,) = [r for r in rows if r[:1] == [name]]
        assert verdicts[name]["best_baseline"] in row
    assert "beats its best simple baseline on " in result.output

    forecast = tmp_path / "forecast.csv"
    result = invoke("predict", run, csv_file, "--out", forecast)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(forecast)
    assert len(frame) == 2 and list(frame.columns) == ["date", "load", "temp", "price", "hour"]


def test_config_file_and_flags_override(csv_file, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('model = "linear"\nlookback = 6\nepochs = 1\nhorizon = 3\n')
    run = tmp_path / "run"
    result = invoke("train", csv_file, "--config", config, "--horizon", "2", "--out", run, "-q")
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "run.json").read_text())["config"]
    assert (saved["model"], saved["lookback"], saved["horizon"]) == ("linear", 6, 2)


def test_compare_json(csv_file):
    result = invoke(
        "compare",
        csv_file,
        "--models",
        "linear,repeat_last,mean",
        "--lookback",
        "6",
        "--epochs",
        "1",
        "--json",
        "-q",
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert [r["model"] for r in rows] == ["linear", "repeat_last", "mean"]
    assert rows[1]["skill"] == 0.0


def test_compare_table_names_the_shared_best_baseline_once(csv_file):
    args = ["--models", "linear,repeat_last,mean", "--lookback", "6", "--epochs", "1", "-q"]
    result = invoke("compare", csv_file, *args, "--json")
    (best,) = {r["best_baseline"] for r in json.loads(result.stdout)["results"]}
    result = invoke("compare", csv_file, *args)
    assert result.exit_code == 0, result.output
    assert f"({best})" not in result.output  # not in every row of the table
    assert f"seasonal_naive (here {best});" in " ".join(result.output.split())


def test_models_lists_every_name():
    result = invoke("models")
    assert result.exit_code == 0
    for name in ("simple", "stacked", "bidirectional", "lstm", "repeat_last", "linear"):
        assert name in result.stdout


def _bad_csv(tmp_path, mutate):
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=120, freq="h").astype(str),
            "a": np.sin(np.arange(120.0)),
            "b": np.cos(np.arange(120.0)),
        }
    )
    frame = mutate(frame)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


def _set(frame, column, row, value):
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(
    ("mutate", "extra", "message"),
    [
        (lambda f: f, ["--targets", "a,zzz"], "zzz"),
        (lambda f: _set(f, "a", 5, np.nan), [], "'a'"),
        (lambda f: _set(f, "a", 5, "oops"), [], "oops"),
        (lambda f: _set(f, "date", 7, "not a date"), [], "not a date"),
        (lambda f: _set(f, "date", 7, f["date"][6]), [], "duplicate"),
        (lambda f: _set(f, "a", 3, np.inf), [], "'a'"),
        (lambda f: f.head(12), ["--lookback", "10"], "split"),
        (lambda f: f.assign(b=1.0), [], "constant"),
        (lambda f: f, ["--fill", "magic"], "fill"),
        (lambda f: f, ["--model", "transformer"], "transformer"),
        (lambda f: f, ["--lookback", "0"], "lookback"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, mutate, extra, message):
    path = _bad_csv(tmp_path, mutate)
    result = invoke(
        "train", path, "--model", "linear", "--epochs", "1", "-q", "--out", tmp_path / "run", *extra
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_missing_file_and_bad_model_dir(tmp_path, csv_file):
    result = invoke("train", tmp_path / "missing.csv", "-q")
    assert result.exit_code == 2 and "does not exist" in result.stderr
    result = invoke("evaluate", tmp_path, csv_file)
    assert result.exit_code == 2 and "not an lstmcast model" in result.stderr


def test_progress_is_one_plain_line_per_epoch_when_not_a_terminal(csv_file, tmp_path):
    result = invoke(
        "train",
        csv_file,
        "--model",
        "linear",
        "--lookback",
        "12",
        "--epochs",
        "3",
        "--patience",
        "0",
        "--out",
        tmp_path / "run",
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert "train " in lines[0] and "val " in lines[0]


@pytest.mark.parametrize(
    "command, extra",
    [("compare", ["--models", "repeat_last,mean"]), ("tune", ["--trials", "1", "--out", "OUT"])],
)
def test_compare_and_tune_refuse_memmap_before_writing_anything(csv_file, tmp_path, command, extra):
    """They read the data into memory once for every model or trial: --memmap is refused in
    one line (it said the CSV was 'in memory already'), and tune opens no study for it."""
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in extra]
    result = invoke(command, csv_file, *args, "--memmap", "--epochs", "1")
    assert result.exit_code == 2, result.output
    assert f"--memmap is not supported by {command} yet" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_an_ensemble_run_says_each_members_best_epoch(csv_file, tmp_path):
    run = tmp_path / "run"
    result = invoke(
        "train", csv_file, "--model", "seglstm", "--ensemble", "2", "--lookback", "12",
        "--epochs", "3", "--out", run, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    training = json.loads((run / "metrics.json").read_text())["training"]
    epochs = training["member_best_epochs"]
    assert len(epochs) == 2 and training["best_epoch"] == max(epochs)
    assert f"members' best epochs {epochs[0]}, {epochs[1]}" in result.output
