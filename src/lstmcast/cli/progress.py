"""Progress output, owned by the CLI: the training loop only calls callbacks.

On a terminal an epoch bar (Rich, cleared when done); otherwise (CI logs, `| tee`, files) one
plain line per epoch, so a long run shows that it is alive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lstmcast.engine.training import Callback, Epoch


class EpochProgress:
    """A training callback that shows each epoch; a new training (epoch numbers start over)
    gets a new bar or a new label."""

    def __init__(self, console: Console, label: str = "") -> None:
        self.console = console
        self.label = label
        self.bar: Progress | None = None
        self.task: Any = None
        self.last = 0

    def __call__(self, epoch: Epoch) -> None:
        losses = f"train {epoch.train_loss:.4g}  val {epoch.val_loss:.4g}"
        if not epoch.kept:
            losses += "  (diverged)"
        fresh = epoch.number <= self.last
        self.last = epoch.number
        if not self.console.is_terminal:
            self.console.print(
                f"{self.label}epoch {epoch.number}/{epoch.epochs}  {losses}", highlight=False
            )
            return
        if self.bar is None:
            self.bar = Progress(
                TextColumn(f"{self.label}epoch"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[losses]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
        if self.task is None or fresh:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task("train", total=epoch.epochs, losses="")
        self.bar.update(self.task, completed=epoch.number, losses=losses)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
            self.task = None
        self.last = 0


@contextlib.contextmanager
def epoch_progress(console: Console, quiet: bool) -> Iterator[list[Callback]]:
    """The callbacks a training command passes on: none when quiet."""
    if quiet:
        yield []
        return
    progress = EpochProgress(console)
    try:
        yield [progress]
    finally:
        progress.close()


def trial_lines(console: Console, n_trials: int) -> Any:
    """An Optuna study callback: one line per finished trial."""
    from optuna.trial import TrialState

    from lstmcast.workflows.tuning import study as studies

    def callback(study: Any, trial: Any) -> None:
        tag = f"[{studies.counted(study)}/{n_trials}] trial {trial.number}"
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            best = study.best_trial
            line = f"{tag}: val MSE {trial.value:.4g} (best {best.value:.4g}, trial {best.number})"
        elif trial.state == TrialState.PRUNED:
            line = f"{tag}: pruned at step {max(trial.intermediate_values, default=0)}"
        elif trial.user_attrs.get("surplus"):
            return
        else:
            reason = trial.user_attrs.get("failed", "failed")
            line = f"{tag}: {reason} (does not count; another trial takes its place)"
        console.print(line, highlight=False)

    return callback


@contextlib.contextmanager
def file_progress(console: Console, quiet: bool) -> Iterator[Any]:
    """A `lstmcast.data.mapped.Progress` callback: a bar per step ("hashing", "mapping",
    "scaling") on a terminal, one line when each step ends elsewhere; None when quiet."""
    if quiet:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total or None)
        bar.update(tasks[what], completed=done, total=total or None)
        if not console.is_terminal and total and done >= total:
            console.print(f"{what}: done", highlight=False)

    if console.is_terminal:
        bar.start()
    try:
        yield update
    finally:
        bar.stop()
