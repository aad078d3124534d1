"""Checkpoints of tune's trials, so that a killed or interrupted study loses at most one epoch.

Each trial trains its folds with a training checkpoint (`lstmcast.engine.checkpoint`) under
`<partial>/trials/trial-<origin>/`, beside a `trial.json` that records its parameters, the
folds it has finished (score, best epoch) and the values it reported to the pruner. A trial
that ends (complete or pruned) removes its directory; an interrupted one leaves it.

When the study is opened again from the same `--out`, every trial left this way is failed
(its worker is dead: this process holds the `--out` lock, and no other writes there) and its
parameters are queued with `resumes=<origin>`, so the trial that makes it up reruns the same
configuration from the saved epoch. On the CPU that trial ends exactly as the interrupted one
would have. If another worker sharing the study takes the queued trial first, it trains it
from the start (the checkpoint is this --out's), which is only slower.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.study import Study
from optuna.trial import FrozenTrial, Trial, TrialState

from lstmcast.config import RunConfig
from lstmcast.engine.checkpoint import Checkpoint
from lstmcast.files import write_json
from lstmcast.workflows.fitting import fingerprint
from lstmcast.workflows.tuning.study import RESUMES

TRIAL_JSON = "trial.json"


@dataclass(frozen=True)
class TrialRecord:
    """What an interrupted trial had done: its finished folds and its pruner reports."""

    directory: Path
    content: dict[str, Any]

    @property
    def folds(self) -> list[dict[str, Any]]:
        return list(self.content["folds"])

    @property
    def reports(self) -> list[tuple[int, float]]:
        return [(int(step), float(value)) for step, value in self.content["reports"]]

    def checkpoint(self, config: RunConfig, data_sha256: str, fold: int) -> Checkpoint:
        part = f"tune fold {fold}"
        return Checkpoint(
            self.directory / f"fold-{fold}", fingerprint(config, data_sha256, part), None
        )

    def add_report(self, step: int, value: float) -> None:
        self.content["reports"].append([step, value])
        self._write()

    def add_fold(self, score: float, best_epoch: int) -> None:
        fold = len(self.content["folds"])
        self.content["folds"].append({"score": score, "best_epoch": best_epoch})
        self._write()
        shutil.rmtree(self.directory / f"fold-{fold}", ignore_errors=True)

    def _write(self) -> None:
        write_json(self.directory / TRIAL_JSON, self.content)


def start(root: Path, trial: Trial) -> TrialRecord:
    """The record of `trial`: the one it resumes (same parameters), or a new one."""
    origin = int(trial.user_attrs.get(RESUMES, trial.number))
    directory = root / f"trial-{origin}"
    old = _read(directory)
    if old is not None and old.get("params") == trial.params:
        content = {**old, "number": trial.number}
    else:
        shutil.rmtree(directory, ignore_errors=True)
        content = {"origin": origin, "number": trial.number, "params": trial.params}
        content |= {"folds": [], "reports": []}
    record = TrialRecord(directory, content)
    record._write()
    return record


def forget_ended(root: Path) -> Any:
    """A study callback: a trial that ended (complete, pruned, or failed by itself, e.g. a NaN
    loss) needs its record no more. An interrupted trial never reaches the callbacks."""

    def callback(study: Study, trial: FrozenTrial) -> None:
        origin = trial.user_attrs.get(RESUMES, trial.number)
        shutil.rmtree(root / f"trial-{origin}", ignore_errors=True)

    return callback


def requeue(root: Path, study: Study) -> int:
    """Queue every trial interrupted under `root` to go on from its checkpoint; drop the
    records of trials that ended. Returns how many were queued."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    queued_or_running = {
        t.user_attrs.get(RESUMES)
        for t in trials.values()
        if t.state in (TrialState.WAITING, TrialState.RUNNING)
    }
    count = 0
    for directory in sorted(root.glob("trial-*")):
        content = _read(directory)
        trial = trials.get(int(content["number"])) if content is not None else None
        if content is None or trial is None:
            shutil.rmtree(directory, ignore_errors=True)  # damaged, or of another study
            continue
        if trial.state == TrialState.RUNNING:  # its worker was killed (we hold the lock)
            study.tell(trial.number, state=TrialState.FAIL)
        elif trial.state != TrialState.FAIL:
            shutil.rmtree(directory, ignore_errors=True)  # it ended after all
            continue
        if content["origin"] not in queued_or_running:
            study.enqueue_trial(content["params"], user_attrs={RESUMES: content["origin"]})
            count += 1
    return count


def _read(directory: Path) -> dict[str, Any] | None:
    try:
        content = json.loads((directory / TRIAL_JSON).read_text(encoding="utf-8"))
        if not isinstance(content, dict) or not {"origin", "number", "params"} <= set(content):
            return None
        return content
    except (OSError, ValueError):
        return None
