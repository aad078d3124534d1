"""tune's checkpoints: an interrupted trial (Ctrl-C in process, SIGKILL in a subprocess) is
made up by a trial with the same parameters that goes on from its last saved epoch and ends
exactly as the uninterrupted study; the tune directory is swapped in whole, with its study."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState
from processes import lstmcast, lstmcast_here
from safetensors.torch import load_file

from lstmcast.errors import ConfigError
from lstmcast.files import staged_directory, staging_path
from lstmcast.workflows.tuning import core, tune
from lstmcast.workflows.tuning.study import RESUMES

SEARCH = {"layers": 1, "units": 4, "activation": "tanh", "bidirectional": False}
SEARCH |= {"batch_size": 64, "lookback": [8, 12]}
ARGS = {"trials": 2, "base": {"epochs": 4, "patience": 0}, "search": SEARCH, "seed": 1}
ARGS |= {"folds": 2}


def reports_counted(monkeypatch, stop_at: int | None = None) -> list[int]:
    """Count every epoch any fold reports; raise KeyboardInterrupt at report `stop_at`."""
    calls: list[int] = []
    real = core.fit_fold

    def counting(series, config, fold, device, report=None, checkpoint=None):
        def counted_report(epoch, mse):
            calls.append(epoch)
            if len(calls) == stop_at:
                raise KeyboardInterrupt
            report(epoch, mse)

        return real(series, config, fold, device, counted_report, checkpoint)

    monkeypatch.setattr(core, "fit_fold", counting)
    return calls


def test_an_interrupted_trial_goes_on_from_its_last_epoch(frame, tmp_path, monkeypatch):
    whole = tune(frame, out=tmp_path / "whole", **ARGS)
    out = tmp_path / "run"
    out.mkdir()
    (out / "forecast_test.csv").write_text("of an earlier train run")
    with monkeypatch.context() as patch:
        # trial 0: 2 folds x 4 epochs = reports 1-8; trial 1 fold 2, epoch 2 is report 14
        reports_counted(patch, stop_at=14)
        with pytest.raises(KeyboardInterrupt):
            tune(frame, out=out, **ARGS)
    trial_dir = staging_path(out) / "trials" / "trial-1"
    assert (trial_dir / "fold-1" / "state.json").is_file() and not out.joinpath(
        "config.json"
    ).exists()

    with monkeypatch.context() as patch:
        calls = reports_counted(patch)
        resumed = tune(frame, out=out, **ARGS)
    assert calls == [2, 3, 4]  # fold 1 is not retrained, fold 2 goes on from epoch 1
    states = [(t.number, t.state) for t in resumed.study.trials]
    assert states == [(0, TrialState.COMPLETE), (1, TrialState.FAIL), (2, TrialState.COMPLETE)]
    made_up = resumed.study.trials[2]
    assert made_up.user_attrs[RESUMES] == 1
    expected = whole.study.trials[1]
    assert made_up.params == expected.params and made_up.value == expected.value
    assert made_up.user_attrs["fold_val_mse"] == expected.user_attrs["fold_val_mse"]
    assert made_up.intermediate_values == expected.intermediate_values
    a, b = (
        load_file(str(tmp_path / "whole" / "model.safetensors")),
        load_file(str(out / "model.safetensors")),
    )
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    assert (out / "study.db").is_file() and not staging_path(out).exists()
    assert "earlier" not in (out / "forecast_test.csv").read_text()  # the whole run is new


def test_a_second_tune_into_the_same_out_is_refused(frame, tmp_path):
    out = tmp_path / "run"
    with staged_directory(out), pytest.raises(ConfigError, match="is being written by pid"):
        tune(frame, out=out, **ARGS)


def test_a_killed_tune_resumes_to_the_uninterrupted_result(csv_file, tmp_path):
    config = tmp_path / "tune.toml"
    config.write_text(
        "epochs = 4\npatience = 0\n[search]\nlayers = 1\nunits = 4\nactivation = 'tanh'\n"
        "bidirectional = false\nbatch_size = 32\nlookback = [8, 12]\n"
    )
    args = ["tune", csv_file, "--trials", "3", "--config", str(config), "--seed", "2", "-q"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = lstmcast_here(*args, "--out", str(whole))  # as a child computes it, without a start
    assert done.exit_code == 0, done.output
    interrupt(lstmcast(*args, "--out", str(killed)), killed, "trial-1", signal.SIGKILL)
    # the killed worker's trial is failed at once (this --out's lock says it is dead), not
    # after the 3-minute heartbeat grace; its make-up is trial 2, then trial 3 gets Ctrl-C
    proc = lstmcast(*args, "--out", str(killed), stderr=subprocess.PIPE)
    stderr = interrupt(proc, killed, "trial-3", signal.SIGINT)
    assert b"Resume with: lstmcast tune" in stderr and b"Traceback" not in stderr
    done = lstmcast_here(*args, "--out", str(killed))  # no signal: a child is not needed
    assert done.exit_code == 0, done.output
    completed = [rows(whole), rows(killed)]
    assert completed[0] == completed[1]
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert all(a[k].equal(b[k]) for k in a)


def interrupt(proc: subprocess.Popen, out: Path, trial: str, sig: int) -> bytes:
    """Send `sig` once `trial` has saved its first epoch; its stderr (when piped)."""
    checkpoint = staging_path(out) / "trials" / trial / "fold-0" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not checkpoint.is_file():
        time.sleep(0.01)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    expected = -signal.SIGKILL if sig == signal.SIGKILL else 130
    assert proc.returncode == expected, f"the study ended before {trial} was interrupted"
    return stderr or b""


def rows(run: Path) -> list[tuple[str, str]]:
    """(params, value) of every completed trial, in order."""
    with (run / "trials.csv").open() as handle:
        table = list(csv.DictReader(handle))
    params = [k for k in table[0] if k.startswith("params_") or k == "value"]
    return [tuple(r[k] for k in params) for r in table if r["state"] == "COMPLETE"]
