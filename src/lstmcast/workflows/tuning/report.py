"""What a study leaves behind: the table of its best trials, Optuna's optimisation-history and
parameter-importance plots (PNG), and `trials.csv`."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from lstmcast.files import atomic_write

# Parameters in table order, with short names; `layers` shows in `units` ("64-32" is two).
LABELS = {
    "units": "units",
    "dropout": "drop",
    "lr": "lr",
    "bidirectional": "bidir",
    "activation": "act",
    "optimizer": "opt",
    "loss": "loss",
    "batch_size": "batch",
    "lookback": "lookback",
}
HISTORY_PNG = "optimization_history.png"
IMPORTANCE_PNG = "param_importances.png"


def params_row(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters with `units_1..units_k` joined into one `units` entry ("64-32")."""
    row = {k: v for k, v in params.items() if not k.startswith("units_")}
    units = [params[k] for k in sorted(p for p in params if p.startswith("units_"))]
    if units:
        row["units"] = "-".join(str(u) for u in units)
    return row


def trials_table(study: Any, top: int = 10) -> Table:
    """The `top` completed trials by validation MSE; parameters that every trial shares go in
    the caption instead of a column."""
    from optuna.trial import TrialState

    done = sorted(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
        key=lambda t: t.value,
    )
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(
        f"{sum(s == state for s in states)} {state.name.lower()}"
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    )
    rows = [params_row(t.params) for t in done]
    names = [n for n in LABELS if any(n in row for row in rows)]
    varying = [n for n in names if len({_text(row.get(n)) for row in rows}) > 1]
    fixed = [f"{n}={_text(rows[0].get(n))}" for n in names if n not in varying] if rows else []
    table = Table(
        title=f"top {min(top, len(done))} of {len(states)} trials ({counts})",
        caption=("same in every trial: " + ", ".join(fixed)) if fixed else None,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("trial", justify="right")
    table.add_column("val MSE", justify="right", no_wrap=True)
    table.add_column("epochs", justify="right")
    table.add_column("parameters that differ")
    for trial, row in zip(done[:top], rows[:top], strict=False):
        table.add_row(
            str(trial.number),
            f"{trial.value:.4g}",
            str(trial.user_attrs.get("best_epoch", "-")),
            " ".join(f"{LABELS[n]}={_text(row.get(n))}" for n in varying),
        )
    return table


def write_plots(study: Any, out: Path) -> dict[str, str]:
    """Write the optimisation history and the parameter importances as PNG; return, per plot,
    the file name or why it was skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import matplotlib as plots

    notes: dict[str, str] = {}
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if done:
            _save(plots.plot_optimization_history(study).figure, out / HISTORY_PNG, plt)
            notes["history"] = HISTORY_PNG
        else:
            notes["history"] = "skipped: no completed trial"
        varying = {
            name
            for name in {p for t in done for p in t.params}
            if len({repr(t.params.get(name)) for t in done}) > 1
        }
        if len(done) < 3 or not varying:
            notes["importance"] = "skipped: needs 3 completed trials whose parameters differ"
            return notes
        # PED-ANOVA needs no scikit-learn (fANOVA, Optuna's default, does). When it cannot
        # tell parameters apart it warns and returns equal importances, which would mislead.
        evaluator = PedAnovaImportanceEvaluator()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
            except (ValueError, RuntimeError) as exc:
                notes["importance"] = f"skipped: {str(exc).splitlines()[0]}"
                return notes
        equal = [str(w.message) for w in caught if "will be equal" in str(w.message)]
        if equal or not importances:
            reason = equal[0].split(".")[0] if equal else "no parameter to rank"
            notes["importance"] = f"skipped: {reason}"
            return notes
        warnings.simplefilter("ignore")  # e.g. "some regimes of units_3 have < 2 trials"
        axes = plots.plot_param_importances(study, evaluator=evaluator)
        _save(axes.figure, out / IMPORTANCE_PNG, plt)
        notes["importance"] = IMPORTANCE_PNG
    return notes


def write_trials_csv(study: Any, path: Path) -> None:
    frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs"))
    atomic_write(path, frame.to_csv(index=False).encode())


def _save(figure: Any, path: Path, plt: Any) -> None:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    atomic_write(path, buffer.getvalue())


def _text(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.0e}" if 0 < abs(value) < 0.01 else f"{value:.2g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)
