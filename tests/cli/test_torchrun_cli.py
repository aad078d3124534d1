"""The CLI under torchrun beside `train`: compare, backtest and tune refuse a torchrun of
several processes in one line (exit 2) instead of running the whole job on every rank."""

import pytest
from typer.testing import CliRunner

from lstmcast.cli import app
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
