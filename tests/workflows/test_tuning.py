"""Hyperparameter search: the [search] schema, folds, a tiny study end to end, pruning,
resuming, two workers sharing one SQLite study, and CLI errors. Tiny models, 1-2 epochs."""

import json
import os
import subprocess
import sys

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

import lstmcast
from lstmcast.cli import app
from lstmcast.config import RunConfig
from lstmcast.data import split_by_fraction
from lstmcast.errors import ConfigError, DataError
from lstmcast.workflows.tuning import core, fold_ranges, parse_search, tune
from lstmcast.workflows.tuning.folds import check_folds
from lstmcast.workflows.tuning.space import Choice, Range, config_for

# Everything small and fixed except what a test varies: one LSTM layer of 4 units, tanh.
TINY = {
    "layers": 1,
    "units": 4,
    "activation": "tanh",
    "bidirectional": False,
    "batch_size": 256,
    "lookback": [8, 12],
}
BASE = {"epochs": 2, "patience": 0}
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)


def counted(study):
    return study.get_trials(states=COUNTED)


# ------------------------------------------------------------------------ the [search] table
def test_search_schema_defaults_ranges_choices_and_fixed_values():
    space = parse_search(None)
    assert space.dims["units"] == Range(int, 16, 256, log=True)
    assert space.dims["layers"] == Range(int, 1, 3)
    assert set(space.dims["optimizer"].values) == {"adam", "adamw", "rmsprop", "sgd"}
    space = parse_search(
        {"units": [32, 64], "dropout": 0.2, "activation": ["tanh"], "lookback": [24, 48, 96]}
    )
    assert space.dims["units"] == Range(int, 32, 64, log=True)
    assert space.dims["dropout"] == Range(float, 0.2, 0.2)
    assert space.dims["activation"] == Choice(("tanh",))
    assert space.dims["lookback"] == Choice((24, 48, 96)) and space.max_lookback() == 96
    config = config_for(RunConfig(), {"layers": 2, "units_1": 64, "units_2": 32, "lr": 0.01})
    assert config.layers == (64, 32) and config.lr == 0.01


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"neurons": 5}, "unknown search dimension 'neurons'"),
        ({"units": [256, 16]}, "search.units"),
        ({"units": [8, 16, 32]}, "search.units"),
        ({"units": "many"}, "search.units"),
        ({"layers": 0}, r"search.layers must be an int in \[1, 8\]"),
        ({"dropout": [0.1, 1.5]}, "search.dropout"),
        ({"lr": [0, 0.1]}, "search.lr"),
        ({"lookback": []}, "search.lookback"),
        ({"batch_size": [32, 0]}, "search.batch_size"),
        ({"batch_size": 32.5}, "search.batch_size"),
        ({"activation": ["mish"]}, "search.activation must be one of"),
        ({"optimizer": []}, "search.optimizer"),
        ({"bidirectional": "yes"}, "search.bidirectional"),
        ({"layers": True}, "search.layers"),
    ],
)
def test_invalid_search_entries_name_the_key(search, message):
    with pytest.raises(ConfigError, match=message):
        parse_search(search)


def test_a_searched_field_at_the_top_level_says_to_use_search(frame):
    with pytest.raises(ConfigError, match=r"'lr' is searched by tune; fix or narrow it in"):
        tune(frame, trials=1, base={"lr": 0.01})


# ------------------------------------------------------------------------------------ folds
def test_walk_forward_folds_expand_and_stop_before_test():
    split = split_by_fraction(1000, 0.1, 0.2)  # train 700, val 100, test 200
    assert [(f.train, f.val) for f in fold_ranges(split)] == [((0, 700), (700, 800))]
    folds = fold_ranges(split, 3)
    assert [(f.train, f.val) for f in folds] == [
        ((0, 500), (500, 600)),
        ((0, 600), (600, 700)),
        ((0, 700), (700, 800)),  # the last fold is the ordinary split
    ]
    assert all(f.val[1] <= split.test[0] for f in folds)
    with pytest.raises(DataError, match="fold 1 of 8 has 0 training rows"):
        check_folds(fold_ranges(split, 8), 10, 1)
    with pytest.raises(ConfigError, match="needs a validation split"):
        fold_ranges(split_by_fraction(1000, 0.0, 0.2), 2)


def test_folds_objective_never_reads_test_rows(frame, monkeypatch):
    seen = []
    real = core.fit_fold

    def spy(series, config, fold, device, report=None, checkpoint=None):
        seen.append(fold)
        return real(series, config, fold, device, report, checkpoint)

    monkeypatch.setattr(core, "fit_fold", spy)
    result = tune(frame, trials=1, base=BASE, search=TINY, folds=2)
    test_start = split_by_fraction(len(frame), 0.1, 0.2).test[0]
    assert {(f.train, f.val) for f in seen} == {((0, 144), (144, 168)), ((0, 168), (168, 192))}
    assert max(f.val[1] for f in seen) == test_start
    for trial in result.study.get_trials(states=(TrialState.COMPLETE,)):
        assert len(trial.user_attrs["fold_val_mse"]) == 2
        assert trial.value == pytest.approx(np.mean(trial.user_attrs["fold_val_mse"]))
        assert max(trial.intermediate_values) == 4  # 2 folds x 2 epochs, one step each
    assert result.study.user_attrs["lstmcast"]["folds"] == 2


# ------------------------------------------------------------------------------ a tiny study
def test_tiny_search_writes_a_normal_model_and_the_plots(frame, tmp_path):
    out = tmp_path / "tuned"
    search = {**TINY, "lr": [1e-3, 1e-2], "optimizer": ["adam", "sgd"]}
    result = tune(frame, trials=3, base=BASE, search=search, out=out, seed=1)

    trials = result.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 3
    for trial in trials:  # fixed dimensions hold in every trial
        params = trial.params
        assert (params["layers"], params["units_1"], params["activation"]) == (1, 4, "tanh")
        assert params["batch_size"] == 256 and params["lookback"] in (8, 12)
        assert params["optimizer"] in ("adam", "sgd") and 1e-3 <= params["lr"] <= 1e-2
    best = min(trials, key=lambda t: t.value)
    assert result.best_trial == best.number and result.best_value == best.value
    # retrained on train+validation for the best trial's best epoch, then saved as usual
    assert result.config.val_fraction == 0 and result.config.patience == 0
    assert result.config.epochs == best.user_attrs["best_epoch"]
    assert result.config.lookback == best.params["lookback"]
    for name in ("model.safetensors", "config.json", "metrics.json", "run.json", "study.db"):
        assert (out / name).is_file(), name
    for name in ("optimization_history.png", "param_importances.png", "trials.csv"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "tune.json").read_text())
    assert summary["best"]["trial"] == best.number and summary["storage"].startswith("sqlite")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and "repeat_last" in metrics
    loaded = lstmcast.load(out)
    assert loaded.predict(frame).shape == (1, 4)
    assert loaded.split_.test == split_by_fraction(len(frame), 0.1, 0.2).test


class PruneOdd(optuna.pruners.BasePruner):
    """Prune every odd-numbered trial at its first report."""

    def prune(self, study, trial):
        return trial.number % 2 == 1


def test_pruning_uses_the_epoch_reports_and_time_splits_work(frame):
    dates = {"val_start": "2024-01-07", "test_start": "2024-01-08"}  # rows 144 and 168
    result = tune(frame, trials=4, base={**BASE, **dates}, search=TINY, pruner=PruneOdd())
    states = {t.number: t.state for t in result.study.trials}
    assert states == {
        0: TrialState.COMPLETE,
        1: TrialState.PRUNED,
        2: TrialState.COMPLETE,
        3: TrialState.PRUNED,
    }
    for trial in result.study.trials:
        steps = sorted(trial.intermediate_values)
        assert steps == ([1, 2] if trial.state == TrialState.COMPLETE else [1])
    assert result.best_trial in (0, 2)
    # the final model trains on every row before test_start (test_start alone: no val split)
    assert result.config.val_start is None and result.config.test_start == "2024-01-08"
    assert result.forecaster.split_.train == (0, 168) and result.forecaster.split_.val == (168, 168)


def test_resumed_study_continues_counting(frame, tmp_path, monkeypatch):
    storage = str(tmp_path / "study.db")
    first = tune(frame, trials=1, base=BASE, search=TINY, storage=storage, seed=3)
    assert [t.number for t in counted(first.study)] == [0]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(core, "fit_fold", interrupted)
        with pytest.raises(KeyboardInterrupt):
            tune(frame, trials=3, base=BASE, search=TINY, storage=storage, seed=3)

    resumed = tune(frame, trials=3, base=BASE, search=TINY, storage=storage, seed=3)
    states = [(t.number, t.state) for t in resumed.study.trials]
    assert states == [
        (0, TrialState.COMPLETE),
        (1, TrialState.FAIL),  # the interrupted one does not count; trials 2 and 3 make it up
        (2, TrialState.COMPLETE),
        (3, TrialState.COMPLETE),
    ]
    params = [tuple(sorted(t.params.items())) for t in counted(resumed.study)]
    assert len(set(params)) > 1  # the resumed sampler does not replay the first draws
    with pytest.raises(ConfigError, match="was run with epochs = 2, this run has 1"):
        tune(frame, trials=3, base={**BASE, "epochs": 1}, search=TINY, storage=storage, seed=3)


def test_two_workers_share_one_sqlite_study(csv_file, tmp_path):
    config = tmp_path / "tune.toml"
    config.write_text(
        "epochs = 2\npatience = 0\n[search]\nlayers = 1\nunits = 4\nactivation = 'tanh'\n"
        "bidirectional = false\nbatch_size = 256\nlookback = [8, 12]\n"
    )
    db = tmp_path / "shared.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "lstmcast.cli", "tune", csv_file, "--trials", "5"),
                *("--storage", f"sqlite:///{db}", "--study", "shared", "--config", str(config)),
                *("--out", str(tmp_path / f"worker{k}"), "--pruner", "hyperband", "--quiet"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(2)
    ]
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
        assert "test split" in stdout
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{db}")
    numbers = [t.number for t in study.trials]
    assert len(counted(study)) == 5 and len(set(numbers)) == len(numbers)
    # a worker that lost the race for the last slot leaves a failed trial marked surplus
    assert all(t.user_attrs.get("surplus") for t in study.get_trials(states=(TrialState.FAIL,)))
    assert (tmp_path / "worker0" / "model.safetensors").is_file()
    assert (tmp_path / "worker1" / "model.safetensors").is_file()


# --------------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[search]\nunits = [256, 16]\n", "search.units must be"),
        ("[search]\nwidth = 3\n", "unknown search dimension 'width'"),
        ("lookback = 24\n", "'lookback' is searched by tune"),
        ("epochs = 0\n", "'epochs' parameter must be an int >= 1"),
    ],
)
def test_cli_bad_config_is_one_line_and_exit_code_2(csv_file, tmp_path, toml, message):
    config = tmp_path / "tune.toml"
    config.write_text(toml)
    args = ["tune", csv_file, "--config", str(config), "--out", str(tmp_path / "o"), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_cli_bad_pruner_and_trials(csv_file, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["tune", csv_file, "--pruner", "asha", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "median or hyperband" in result.stderr
    result = runner.invoke(app, ["tune", csv_file, "--trials", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "'trials' parameter" in result.stderr


def test_a_quantile_head_is_tuned_on_its_median(frame):
    result = tune(
        frame,
        trials=1,
        base={**BASE, "intervals": [0.8], "interval_method": "quantile"},
        search=TINY,
    )
    assert np.isfinite(result.best_value)
    assert "intervals" in result.metrics
