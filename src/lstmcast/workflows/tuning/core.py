"""`tune()`: search hyperparameters with Optuna, then retrain the best on train+validation,
evaluate it on test beside repeat_last and save it as a normal lstmcast model."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmcast import models
from lstmcast.checks import check_int
from lstmcast.config import RunConfig, make_config
from lstmcast.data import TimeSeries
from lstmcast.engine.training import Callback, resolve_device
from lstmcast.errors import ConfigError
from lstmcast.files import check_output_dir, staged_directory
from lstmcast.workflows import defaults, mapped
from lstmcast.workflows.fitting import Columns, DataLike, read_dataset, split_for
from lstmcast.workflows.forecaster import Forecaster
from lstmcast.workflows.tuning.folds import Fold, check_folds, fit_fold, fold_ranges
from lstmcast.workflows.tuning.space import SearchSpace, config_for, parse_search, searched_fields

if TYPE_CHECKING:
    import optuna

TUNE_JSON = "tune.json"
TRIALS_CSV = "trials.csv"
TRIALS_DIR = "trials"  # the trials' checkpoints, in the partial run directory


@dataclass
class TuneResult:
    """The outcome of `tune`: the best trial, the study, and the retrained best model."""

    best_params: dict[str, Any]  # the best trial's parameters (units per layer as units_k)
    best_value: float  # its validation MSE (scaled), the mean over folds with `folds`
    best_trial: int
    config: RunConfig  # what the final model was trained with (train+validation, fixed epochs)
    metrics: dict[str, Any]  # the final model on the test split beside repeat_last
    forecaster: Forecaster
    study: optuna.Study
    out: Path | None = None


def tune(
    data: DataLike,
    *,
    model: str = "lstm",
    trials: int = 50,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    base: RunConfig | dict[str, Any] | None = None,
    search: dict[str, Any] | None = None,
    folds: int | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    pruner: str | optuna.pruners.BasePruner = "median",
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
    callbacks: Sequence[Callback] = (),
) -> TuneResult:
    """Search the `search` space (see `lstmcast.workflows.tuning.space`) for the config of
    `model` with the lowest validation MSE, then retrain and evaluate the best one.

    `base` holds the fixed options (`RunConfig` fields such as epochs, horizon, targets); the
    searched fields come from `search` only. `trials` is the total for the study, shared by
    every worker on the same `storage` (a SQLAlchemy URL or a SQLite file path; default
    `<out>/study.db`, or memory without `out`). A study that exists is resumed. With `folds=K`
    the objective is the mean over K walk-forward folds (`lstmcast.workflows.tuning.folds`).
    """

    from lstmcast.workflows.tuning import report
    from lstmcast.workflows.tuning import study as studies

    check_int("trials", trials)
    if isinstance(pruner, str) and pruner not in studies.PRUNERS:
        raise ConfigError(f"The 'pruner' parameter must be median or hyperband. Got {pruner!r}.")
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ConfigError(f"The 'timeout' parameter must be seconds > 0. Got {timeout!r}.")
    space = parse_search(search)
    config = _base_config(model, base, seed, space)
    if config.id_col is not None or config.has_known_inputs:
        raise ConfigError(
            "tune takes one wide table with past covariates for now; --id-col, "
            "--future-covariates, --static, --calendar, --holidays and --id-embedding are not "
            "supported by tune yet (train takes them)"
        )
    mapped.refuse_in_memory_command(config, "tune", "trials")  # before the study opens
    dataset = read_dataset(data, Columns.of(config))  # the one read of the data
    series = dataset.series
    if config.lookback is None:  # not searched either: chosen from the data as train does
        lookback, _ = defaults.default_lookback(dataset.panel, config)
        config = dataclasses.replace(config, lookback=lookback)
    longest = dataclasses.replace(config, lookback=space.max_lookback())
    split = split_for(series, longest)  # raises if the longest lookback fails
    fold_list = fold_ranges(split, folds)
    check_folds(fold_list, longest.lookback_rows, config.horizon)
    space = space.for_model(_model_fields(config, series))
    device = resolve_device(config.device)

    directory = Path(out) if out is not None else None
    with contextlib.ExitStack() as stack:
        staging = None
        if directory is not None:  # the run is assembled aside and swapped in whole
            check_output_dir(directory)
        url = studies.storage_url(storage, out)
        if directory is not None:  # a study database inside --out lives on in the new run
            carry = studies.files_inside(url, directory)
            staging = stack.enter_context(staged_directory(directory, resume=None, carry=carry))
        study = _search(
            url,
            study_name,
            data_sha256=dataset.sha256,
            config=config,
            space=space,
            folds=fold_list,
            series=series,
            device=device,
            trials=trials,
            seed=seed,
            pruner=pruner,
            timeout=timeout,
            on_trial=on_trial,
            trials_dir=None if staging is None else staging / TRIALS_DIR,
        )
        best = study.best_trial
        epochs = max(1, int(best.user_attrs.get("best_epoch", config.epochs)))
        # Retrained on train+validation, unless intervals are asked for: they are calibrated
        # on validation windows the model has not seen, so then validation stays held out.
        held_out = {} if config.intervals else {"val_fraction": 0.0, "val_start": None}
        final = make_config(
            {"epochs": epochs, "patience": 0, **held_out}, config_for(config, best.params)
        )
        from lstmcast.workflows.runs import CHECKPOINT, finish_run

        forecaster = Forecaster.from_config(final)
        if staging is None:
            forecaster.fit(dataset, callbacks=callbacks)
        else:  # a killed final fit goes on from its last epoch (when the best is the same)
            forecaster.fit(
                dataset, callbacks=callbacks, checkpoint=staging / CHECKPOINT, resume=None
            )
            shutil.rmtree(staging / CHECKPOINT, ignore_errors=True)
            shutil.rmtree(staging / TRIALS_DIR, ignore_errors=True)
        metrics = finish_run(forecaster, dataset, staging)
        if staging is not None:
            plots = report.write_plots(study, staging)
            report.write_trials_csv(study, staging / TRIALS_CSV)
            _write_summary(staging, study, url, space, fold_list, best, final, plots)
    return TuneResult(
        best_params=dict(best.params),
        best_value=float(best.value) if best.value is not None else float("nan"),
        best_trial=best.number,
        config=final,
        metrics=metrics,
        forecaster=forecaster,
        study=study,
        out=directory,
    )


def _search(
    url: str | None,
    study_name: str | None,
    *,
    data_sha256: str,
    config: RunConfig,
    space: SearchSpace,
    folds: list[Fold],
    series: TimeSeries,
    device: Any,
    trials: int,
    seed: int,
    pruner: str | optuna.pruners.BasePruner,
    timeout: float | None,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None,
    trials_dir: Path | None,
) -> optuna.Study:
    """Open (or resume) the study and run this worker's share of the N trials; the study
    has at least one completed trial when this returns."""
    import optuna

    from lstmcast.workflows.tuning import resume
    from lstmcast.workflows.tuning import study as studies

    name = study_name or f"lstmcast-{config.model}"
    meta = {
        "data_sha256": data_sha256,
        "model": config.model,
        "folds": len(folds),
        "config": {k: v for k, v in config.to_dict().items() if k != "device"},
    }
    max_steps = config.epochs * len(folds)
    verbosity = optuna.logging.get_verbosity()
    # Optuna logs each failed trial with its traceback, surplus ones included; the progress
    # lines say what happened instead, and errors that stop the search are raised.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = studies.open_study(
            url, name, seed=seed, pruner=studies.make_pruner(pruner, max_steps), meta=meta
        )
        if trials_dir is not None:
            resume.requeue(trials_dir, study)
        to_run = trials - studies.counted(study)
        if to_run > 0:
            study_callbacks = [studies.stop_at(trials)]
            if trials_dir is not None:
                study_callbacks.append(resume.forget_ended(trials_dir))
            if on_trial is not None:
                study_callbacks.append(on_trial)
            objective = _objective(
                series, config, space, folds, device, trials, data_sha256, trials_dir
            )
            study.optimize(
                objective,
                n_trials=to_run,  # a cap for this worker; the shared count stops it sooner
                timeout=timeout,
                callbacks=study_callbacks,
                catch=(studies.Surplus, _out_of_memory()),
            )
    finally:
        optuna.logging.set_verbosity(verbosity)
    if not studies.completed(study):
        raise ConfigError(
            f"study '{name}' has no completed trial yet ({len(study.trials)} pruned or failed); "
            f"run more trials or use a milder --pruner"
        )
    return study


def _objective(
    series: TimeSeries,
    base: RunConfig,
    space: SearchSpace,
    folds: list[Fold],
    device: Any,
    n_trials: int,
    data_sha256: str,
    trials_dir: Path | None,
) -> Any:
    """The trial's score; with `trials_dir` each fold checkpoints every epoch there and an
    interrupted trial's queued make-up goes on from it (`lstmcast.workflows.tuning.resume`)."""
    import optuna

    from lstmcast.workflows.tuning import resume
    from lstmcast.workflows.tuning import study as studies

    def objective(trial: optuna.Trial) -> float:
        studies.claim(trial, n_trials)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        config = config_for(base, space.suggest(trial))
        record = resume.start(trials_dir, trial) if trials_dir is not None else None
        reported: set[int] = set()
        done = record.folds if record is not None else []
        for step, value in record.reports if record is not None else []:
            trial.report(value, step)
            reported.add(step)
        for k in range(len(done), len(folds)):
            offset = k * config.epochs  # fold k reports epochs as steps offset+1 .. offset+E

            def report(epoch: int, mse: float, offset: int = offset) -> None:
                step = offset + epoch
                if step not in reported:  # a resumed fold reruns the epoch it was in
                    reported.add(step)
                    trial.report(mse, step)
                    if record is not None:
                        record.add_report(step, mse)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {step}")

            checkpoint = record.checkpoint(config, data_sha256, k) if record is not None else None
            try:
                result, score = fit_fold(series, config, folds[k], device, report, checkpoint)
            except _out_of_memory():
                trial.set_user_attr("failed", "out of GPU memory")
                raise
            done.append({"score": score, "best_epoch": result.best_epoch})
            if record is not None:
                record.add_fold(score, result.best_epoch)
        scores = [float(f["score"]) for f in done]
        best_epochs = [int(f["best_epoch"]) for f in done]
        # The final model trains for this many epochs on train+validation (no early stopping).
        trial.set_user_attr("best_epoch", max(1, round(float(np.mean(best_epochs)))))
        trial.set_user_attr("fold_val_mse", scores)
        value = float(np.mean(scores))
        if np.isnan(value):
            trial.set_user_attr("failed", "validation MSE is not finite")
        return value  # Optuna fails a trial whose value is NaN

    return objective


def _base_config(
    model: str, base: RunConfig | dict[str, Any] | None, seed: int, space: SearchSpace
) -> RunConfig:
    """The fixed options; a searched field set in a `base` dict (a TOML top level) is an
    error that says to fix it in `[search]` instead."""
    if isinstance(base, RunConfig):
        config = base
    else:
        values = dict(base or {})
        clash = [k for k in (*searched_fields(space), "layers") if k in values]
        if clash:
            key = clash[0]
            hint = "layers (count) and units" if key == "layers" else f"{key} = <value>"
            raise ConfigError(
                f"'{key}' is searched by tune; fix or narrow it in the [search] table "
                f"({hint}) instead of setting it at the top level"
            )
        config = make_config(values)
    return make_config({"model": model, "seed": seed}, config)


def _model_fields(config: RunConfig, series: TimeSeries) -> set[str]:
    """The config fields of `config.model`; raise ConfigError if it has nothing to train."""
    probe = models.build_for_run(config, series.n_features, series.n_targets, seeded=False)
    if not models.is_trainable(probe):
        raise ConfigError(f"model '{config.model}' has nothing to train; tune an LSTM model")
    config_fields = models.config_dict(probe)  # the config's fields, plus 'name'
    return set(config_fields)


def _out_of_memory() -> type[Exception]:
    """A trial too big for the GPU fails and the search goes on."""
    import torch

    return torch.cuda.OutOfMemoryError


def _write_summary(
    directory: Path,
    study: Any,
    url: str | None,
    space: SearchSpace,
    folds: list[Fold],
    best: Any,
    final: RunConfig,
    plots: dict[str, str],
) -> None:
    from lstmcast.files import write_json
    from lstmcast.workflows.tuning import study as studies

    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    write_json(
        directory / TUNE_JSON,
        {
            "study": study.study_name,
            "storage": studies.shown_url(url),
            "objective": "validation MSE (scaled)"
            + (f", mean over {len(folds)} walk-forward folds" if len(folds) > 1 else ""),
            "folds": [{"train": list(f.train), "val": list(f.val)} for f in folds],
            "trials": {s: states.count(s) for s in sorted(set(states))},
            "best": {
                "trial": best.number,
                "value": best.value,
                "params": best.params,
                "best_epoch": best.user_attrs.get("best_epoch"),
            },
            "search": json.loads(json.dumps(space.describe(), default=str)),
            "final_config": final.to_dict(),
            "plots": plots,
        },
    )
