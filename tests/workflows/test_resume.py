"""Checkpoints and whole run directories: a run killed with SIGKILL at a moment of its own
choosing resumes and ends bit for bit where an uninterrupted run ends; a run directory is
swapped in whole, under a lock, and bad output paths are refused before training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from processes import lstmcast
from safetensors.torch import load_file
from typer.testing import CliRunner

from lstmcast.cli import app
from lstmcast.errors import ConfigError, TrainingError
from lstmcast.files import staged_directory, staging_path
from lstmcast.workflows.forecaster import Forecaster
from lstmcast.workflows.runs import train_run

runner = CliRunner()
# dropout makes the global RNG matter; no early stopping so every epoch runs
TRAIN = ["--model", "stacked", "--lookback", "12", "--epochs", "12", "--patience", "0"]
TRAIN += ["--seed", "7", "--device", "cpu", "-q"]


def weights(run: Path) -> dict:
    return load_file(str(run / "model.safetensors"))


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    from conftest import make_frame  # tests/ is on the path (rootdir conftest)

    data = tmp_path / "data.csv"
    make_frame(1200).to_csv(data, index=False)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert lstmcast("train", str(data), "--out", str(whole), *TRAIN).wait(timeout=300) == 0

    proc = lstmcast("train", str(data), "--out", str(killed), *TRAIN)
    state = staging_path(killed) / "checkpoint" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["epoch"] >= 3:
            time.sleep(0.05)  # somewhere inside the next epoch
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    assert not killed.exists()  # nothing half-written at --out

    assert lstmcast("train", str(data), "--out", str(killed), *TRAIN, "--resume").wait(300) == 0
    a, b = weights(whole), weights(killed)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].equal(b[name]), name
    history = json.loads((killed / "run.json").read_text())["training"]["history"]
    assert [row["epoch"] for row in history] == list(range(1, 13))
    assert not staging_path(killed).exists() and not (killed / "checkpoint").exists()


def test_a_run_directory_is_replaced_whole(tmp_path, frame):
    out = tmp_path / "run"
    out.mkdir()
    (out / "study.db").write_text("an earlier tuning study")  # another kind of run
    config = Forecaster("simple", lookback=6, epochs=2, seed=0).config
    train_run(frame, config, out)
    assert not (out / "study.db").exists()
    assert {"model.safetensors", "config.json", "metrics.json", "run.json"} <= {
        p.name for p in out.iterdir()
    }


def test_a_second_writer_is_refused_naming_the_first(tmp_path, frame):
    out = tmp_path / "run"
    config = Forecaster("simple", lookback=6, epochs=1, seed=0).config
    holder = f"being written by pid {os.getpid()} since"
    with staged_directory(out), pytest.raises(ConfigError, match=holder):
        train_run(frame, config, out)
    train_run(frame, config, out, allow_untrained=True)  # the lock was released


def test_output_paths_are_checked_before_training(tmp_path, csv_file):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    trained = []
    with pytest.MonkeyPatch.context() as patch:  # refused before training starts, not after
        patch.setattr("lstmcast.workflows.fitting.train", lambda *a, **k: trained.append(1))
        result = runner.invoke(app, ["train", csv_file, "--out", str(a_file), "--epochs", "50"])
    assert result.exit_code == 2 and "is a file; name a directory" in result.output
    assert trained == [] and not staging_path(a_file).exists()
    result = runner.invoke(app, ["train", csv_file, "--resume", "--out", str(tmp_path / "new")])
    assert result.exit_code == 2 and "nothing to resume" in result.output


def test_a_model_that_learned_nothing_is_not_written(tmp_path, frame):
    # an absurd learning rate diverges at once and for good: the initial weights are kept
    config = Forecaster(
        "simple", lookback=6, epochs=3, lr=1e6, clip_norm=0, divergence_retries=0, seed=0
    ).config
    with pytest.raises(TrainingError, match=r"untrained.*--allow-untrained"):
        train_run(frame, config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    metrics = train_run(frame, config, tmp_path / "run", allow_untrained=True)
    assert metrics["training"]["stopped"] == "diverged"


def test_ctrl_c_keeps_the_checkpoint_and_says_how_to_resume(tmp_path):
    from conftest import make_frame

    data = tmp_path / "data.csv"
    make_frame(1200).to_csv(data, index=False)
    out = tmp_path / "run"
    proc = lstmcast("train", str(data), "--out", str(out), *TRAIN, stderr=subprocess.PIPE)
    state = staging_path(out) / "checkpoint" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not state.is_file():
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert b"Resume with: lstmcast train" in stderr and b"--resume" in stderr
    assert b"Traceback" not in stderr
    assert lstmcast("train", str(data), "--out", str(out), *TRAIN, "--resume").wait(300) == 0
    assert (out / "model.safetensors").is_file()
