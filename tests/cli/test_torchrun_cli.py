"""The CLI under torchrun beside `train`: compare, backtest and tune refuse a torchrun of
several processes in one line (exit 2) instead of running the whole job on every rank; and
a worker of `train --nproc N` interrupted by Ctrl-C says to resume with --nproc N."""

import contextlib
import json
import os
import sys

import pytest
from typer.testing import CliRunner

from lstmcast.cli import app
from lstmcast.cli.app import LAUNCHED_AS, resume_command
from lstmcast.engine import distributed

runner = CliRunner()


def under_torchrun(monkeypatch, rank: int = 0, world: int = 2) -> None:
    for name, value in (("RANK", rank), ("WORLD_SIZE", world), ("LOCAL_RANK", rank)):
        monkeypatch.setenv(name, str(value))


@pytest.mark.parametrize(
    ("command", "instead"),
    [
        (["compare", "--models", "linear,repeat_last"], "run compare once"),
        (["backtest", "--model", "linear", "--folds", "2"], "run backtest once"),
        (["tune", "--trials", "2"], "run tune once, or its workers with --storage"),
    ],
    ids=["compare", "backtest", "tune"],
)
def test_commands_that_do_not_train_with_ddp_refuse_torchrun(
    csv_file, tmp_path, monkeypatch, command, instead
):
    under_torchrun(monkeypatch)
    out = tmp_path / "out"
    result = runner.invoke(app, [command[0], csv_file, *command[1:], "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert (
        f"error: lstmcast {command[0]} does not run under torchrun (WORLD_SIZE=2); only "
        f"`train` trains with DDP: {instead}"
    ) in lines[0]
    assert not out.exists()  # refused before reading or training anything

    under_torchrun(monkeypatch, rank=1)  # the other ranks stop too, without a second line
    result = runner.invoke(app, [command[0], csv_file, *command[1:], "--out", str(out)])
    assert result.exit_code == 2 and result.output.strip() == ""


def test_one_process_under_torchrun_or_none_is_not_refused(monkeypatch):
    for name in distributed.TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    distributed.check_one_process("tune", "run tune once")
    under_torchrun(monkeypatch, world=1)
    distributed.check_one_process("tune", "run tune once")


def test_the_launcher_tells_its_workers_the_command_as_typed(csv_file, tmp_path, monkeypatch):
    for name in distributed.TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(LAUNCHED_AS, raising=False)
    seen = []

    def launch(nproc, module_args):
        seen.append((nproc, module_args, json.loads(os.environ[LAUNCHED_AS])))
        return 0

    monkeypatch.setattr(distributed, "launch", launch)
    words = ["train", csv_file, "--nproc", "2", "--epochs", "3", "--out", str(tmp_path / "r")]
    monkeypatch.setattr(sys, "argv", ["lstmcast", *words])
    result = runner.invoke(app, words)
    assert result.exit_code == 0, result.output
    without = ["train", csv_file, "--epochs", "3", "--out", str(tmp_path / "r")]
    assert seen == [(2, without, words)]
    assert LAUNCHED_AS not in os.environ  # set for the workers only


def test_ctrl_c_in_a_worker_of_nproc_says_to_resume_with_nproc(csv_file, tmp_path, monkeypatch):
    """Rank 0 of `train --nproc 2` gets Ctrl-C from torchrun: its own argv lacks --nproc,
    the hint must not."""
    under_torchrun(monkeypatch)
    out = str(tmp_path / "r")
    typed = ["train", csv_file, "--nproc", "2", "--epochs", "3", "--out", out]
    monkeypatch.setenv(LAUNCHED_AS, json.dumps(typed))
    worker = ["train", csv_file, "--epochs", "3", "--out", out]
    monkeypatch.setattr(sys, "argv", ["/x/lstmcast/__main__.py", *worker])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("lstmcast.workflows.runs.train_run", interrupted)
    monkeypatch.setattr(distributed, "session", lambda device: contextlib.nullcontext())
    result = runner.invoke(app, worker)
    assert result.exit_code == 130, result.output
    hint = f"Resume with: lstmcast train {csv_file} --nproc 2 --epochs 3 --out {out} --resume"
    assert hint in result.output.replace("\n", " ")


def test_the_resume_hint_adds_resume_once_or_repeats_the_command():
    words = ["train", "d.csv", "--resume", "--nproc", "2", "--out", "r s"]
    assert resume_command(words, "flag") == "lstmcast train d.csv --nproc 2 --out 'r s' --resume"
    words = ["tune", "d.csv", "--trials", "3"]
    assert resume_command(words, "again") == "lstmcast tune d.csv --trials 3"
