"""`lstmcast train --nproc N`: torchrun's workers train one model (DDP, gloo on the CPU),
rank 0 alone prints and writes; bad --nproc values end in one line and exit 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from processes import lstmcast_here
from typer.testing import CliRunner

from lstmcast.cli import app
from lstmcast.cli.app import _without_nproc
from lstmcast.engine import distributed

runner = CliRunner()
OPTIONS = ("--model", "simple", "--layers", "8", "--lookback", "12", "--epochs", "2")


def test_nproc_2_trains_one_model_and_rank_0_alone_prints_and_writes(csv_file, tmp_path):
    out = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if k not in distributed.TORCHRUN_ENV}
    command = [sys.executable, "-m", "lstmcast", "train", csv_file, *OPTIONS]
    done = subprocess.run(
        [*command, "--nproc", "2", "--out", str(out)],
        env={**env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    # rank 0 alone prints: one table, one line per epoch, one "wrote"
    assert done.stdout.count("test split:") == 1
    assert done.stderr.count("epoch 1/2") == 1 and done.stderr.count("wrote") == 1
    for name in ("model.safetensors", "config.json", "metrics.json", "run.json"):
        assert (out / name).is_file(), name
    assert not (tmp_path / ".ddp.partial").exists()  # swapped in whole, checkpoint gone
    history = json.loads((out / "run.json").read_text())["training"]["history"]
    assert [row["epoch"] for row in history] == [1, 2]

    # (what one process trains at the same global batch: tests/engine/test_distributed.py)
    training = json.loads((out / "metrics.json").read_text())["training"]
    assert training["stopped"] == "completed" and training["best_epoch"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nproc", "0"], "--nproc must be an integer >= 1. Got 0"),
        (["--nproc", "2", "--device", "cuda:1"], "--device cuda:1 cannot be shared"),
        (["--nproc", "2", "--device", "mps"], "--device mps cannot be shared"),
        (["--nproc", "3", "--batch-size", "2"], "--batch-size 2 is smaller than --nproc 3"),
    ],
)
def test_bad_nproc_values_end_in_one_line(csv_file, tmp_path, extra, message):
    result = runner.invoke(app, ["train", csv_file, "--out", str(tmp_path / "r"), *extra])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_nproc_inside_torchrun_is_refused(csv_file, tmp_path, monkeypatch):
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["train", csv_file, "--nproc", "2", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "under torchrun leave it out" in result.output


def test_the_workers_run_the_command_without_nproc():
    words = ["train", "d.csv", "--nproc", "2", "--epochs", "3", "--nproc=4", "--quiet"]
    assert _without_nproc(words) == ["train", "d.csv", "--epochs", "3", "--quiet"]


def test_nproc_2_with_memmap_builds_one_cache_and_trains_what_one_process_trains(
    csv_file, tmp_path, monkeypatch
):
    """Both ranks map the file into one cache (the lock lets one build while the other
    waits) and train the model that one process trains from the mapping at the same global
    batch (within float tolerance: the all-reduce sums in another order)."""
    from safetensors.numpy import load_file

    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k not in distributed.TORCHRUN_ENV}
    env = {**env, "OMP_NUM_THREADS": "1", "LSTMCAST_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "lstmcast", "train", csv_file, *OPTIONS, "--memmap"]
    ddp = subprocess.run(
        [*command, "--nproc", "2", "--out", str(tmp_path / "ddp")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert ddp.returncode == 0, ddp.stderr
    assert len(list(cache.glob("*.json"))) == 1  # one mapping for both ranks

    # the one-process reference in this process, on one thread as each rank (no child start)
    monkeypatch.setenv("LSTMCAST_CACHE_DIR", str(cache))
    one = lstmcast_here("train", csv_file, *OPTIONS, "--memmap", "--out", str(tmp_path / "one"))
    assert one.exit_code == 0, one.output
    a = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    b = load_file(str(tmp_path / "one" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5, err_msg=key)
    notes = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["notes"]
    assert any("memory-mapped from" in note for note in notes)
