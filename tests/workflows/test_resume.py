"""Checkpoints and whole run directories: a run killed with SIGKILL at a moment of its own
choosing resumes and ends bit for bit where an uninterrupted run ends; a run directory is
swapped in whole, under a lock, and bad output paths are refused before training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from processes import lstmcast, lstmcast_here
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


@dataclass(frozen=True)
class Interrupted:
    """One run interrupted twice, and the run it must end as: Ctrl-C at its first saved
    epoch, SIGKILL inside an epoch of the resumed run, then resumed to the end."""

    whole: Path  # the uninterrupted run
    out: Path
    ctrl_c: int  # the exit code after Ctrl-C
    ctrl_c_stderr: bytes
    saved_at_ctrl_c: int  # the epoch of the checkpoint Ctrl-C left (0: none)
    killed: int  # the exit code of the resumed run that was SIGKILLed
    out_after_kill: bool  # whether --out existed after the kill
    finished: int  # the exit code of the last --resume
    finished_output: str


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Interrupted:
    """The two tests below share these two children (each one's start imports torch, most of
    its time); the uninterrupted run and the last --resume, which need no signal, run in
    this process, on one thread as the children."""
    from conftest import make_frame  # tests/ is on the path (rootdir conftest)

    root = tmp_path_factory.mktemp("resume")
    data = root / "data.csv"
    make_frame(1200).to_csv(data, index=False)
    whole, out = root / "whole", root / "run"
    done = lstmcast_here("train", str(data), "--out", str(whole), *TRAIN)
    assert done.exit_code == 0, done.output
    state = staging_path(out) / "checkpoint" / "state.json"

    def saved_epoch() -> int:
        return json.loads(state.read_text())["epoch"] if state.is_file() else 0

    proc = lstmcast("train", str(data), "--out", str(out), *TRAIN, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not state.is_file():
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    ctrl_c, saved = proc.returncode, saved_epoch()

    proc = lstmcast("train", str(data), "--out", str(out), *TRAIN, "--resume")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if saved_epoch() >= max(3, saved + 2):
            time.sleep(0.05)  # somewhere inside the next epoch
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    killed = proc.wait(timeout=60)
    out_after_kill = out.exists()

    done = lstmcast_here("train", str(data), "--out", str(out), *TRAIN, "--resume")
    finished = done.exit_code
    return Interrupted(
        whole, out, ctrl_c, stderr, saved, killed, out_after_kill, finished, done.output
    )


def test_ctrl_c_keeps_the_checkpoint_and_says_how_to_resume(interrupted):
    stderr = interrupted.ctrl_c_stderr
    assert interrupted.ctrl_c == 130, stderr
    assert b"Resume with: lstmcast train" in stderr and b"--resume" in stderr
    assert b"Traceback" not in stderr
    assert interrupted.saved_at_ctrl_c >= 1  # the checkpoint stayed for --resume
    assert interrupted.finished == 0 and (interrupted.out / "model.safetensors").is_file()


def test_a_killed_run_resumes_to_the_uninterrupted_result(interrupted):
    assert interrupted.killed == -signal.SIGKILL, "the run ended before it could be killed"
    assert not interrupted.out_after_kill  # nothing half-written at --out
    assert interrupted.finished == 0, interrupted.finished_output
    killed = interrupted.out
    a, b = weights(interrupted.whole), weights(killed)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].equal(b[name]), name
    history = json.loads((killed / "run.json").read_text())["training"]["history"]
    assert [row["epoch"] for row in history] == list(range(1, 13))
    assert not staging_path(killed).exists() and not (killed / "checkpoint").exists()
