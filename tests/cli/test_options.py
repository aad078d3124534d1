"""Every command that trains takes every run option under the same flag and TOML key: walk the
fields of RunConfig, give each a value other than its default, and check that the command
hands exactly those values on."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from lstmcast.cli import app
from lstmcast.cli.app import BENCHMARK_FREE
from lstmcast.cli.options import PANELS
from lstmcast.config import FIELDS, RunConfig, make_config

# field -> (command-line words, the value RunConfig then holds, the TOML value)
SAMPLES: dict[str, tuple[list[str], object, str]] = {
    "model": (["--model", "lstm"], "lstm", '"lstm"'),
    "lookback": (["--lookback", "7"], 7, "7"),
    "horizon": (["--horizon", "2"], 2, "2"),
    "targets": (["--targets", "load,temp"], ("load", "temp"), '["load", "temp"]'),
    "covariates": (["--covariates", "hour"], ("hour",), '["hour"]'),
    "time_col": (["--time-col", "date"], "date", '"date"'),
    "id_col": (["--id-col", "store"], "store", '"store"'),
    "future_covariates": (["--future-covariates", "promo"], ("promo",), '["promo"]'),
    "static": (["--static", "region"], ("region",), '["region"]'),
    "calendar": (["--calendar", "dayofweek,month"], "dayofweek,month", '"dayofweek,month"'),
    "holidays": (["--holidays", "US"], "US", '"US"'),
    "exchange": (["--exchange", "XNYS"], "XNYS", '"XNYS"'),
    "macro": (["--macro", "cpi.csv"], "cpi.csv", '"cpi.csv"'),
    "release_lag": (["--release-lag", "45D"], "45D", '"45D"'),
    "id_embedding": (["--id-embedding", "4"], 4, "4"),
    "transform": (["--transform", "load=log"], "load=log", '"load=log"'),
    "market": (["--market"], True, "true"),
    "cost_bps": (["--cost-bps", "5"], 5.0, "5"),
    "fill": (["--fill", "ffill"], "ffill", '"ffill"'),
    "duplicates": (["--duplicates", "last"], "last", '"last"'),
    "scaler": (["--scaler", "minmax"], "minmax", '"minmax"'),
    "val_fraction": (["--val-fraction", "0.15"], 0.15, "0.15"),
    "test_fraction": (["--test-fraction", "0.25"], 0.25, "0.25"),
    "val_start": (["--val-start", "2024-01-06"], "2024-01-06", '"2024-01-06"'),
    "test_start": (["--test-start", "2024-01-08"], "2024-01-08", '"2024-01-08"'),
    "stride": (["--stride", "2"], 2, "2"),
    "memmap": (["--memmap"], True, "true"),
    "layers": (["--layers", "8,8"], (8, 8), "[8, 8]"),
    "dropout": (["--dropout", "0.1"], 0.1, "0.1"),
    "activation": (["--activation", "tanh"], "tanh", '"tanh"'),
    "bidirectional": (["--bidirectional"], True, "true"),
    "period": (["--period", "3"], 3, "3"),
    "model_options": (["--model-options", "revin=true"], {"revin": True}, "{revin = true}"),
    "ensemble": (["--ensemble", "3"], 3, "3"),
    "ensemble_reduce": (["--ensemble-reduce", "median"], "median", '"median"'),
    "epochs": (["--epochs", "3"], 3, "3"),
    "batch_size": (["--batch-size", "16"], 16, "16"),
    "optimizer": (["--optimizer", "adamw"], "adamw", '"adamw"'),
    "lr": (["--lr", "0.01"], 0.01, "0.01"),
    "weight_decay": (["--weight-decay", "0.001"], 0.001, "0.001"),
    "loss": (["--loss", "mae"], "mae", '"mae"'),
    "patience": (["--patience", "2"], 2, "2"),
    "clip_norm": (["--clip-norm", "0.5"], 0.5, "0.5"),
    "divergence_retries": (["--divergence-retries", "1"], 1, "1"),
    "seed": (["--seed", "5"], 5, "5"),
    "device": (["--device", "cpu"], "cpu", '"cpu"'),
    "cuda_graph": (["--no-cuda-graph"], False, "false"),
    "amp": (["--amp"], True, "true"),
    "intervals": (["--intervals", "0.8,0.95"], (0.8, 0.95), "[0.8, 0.95]"),
    "interval_method": (["--interval-method", "cqr"], "cqr", '"cqr"'),
    "quantiles": (
        ["--quantiles", "0.025,0.1,0.5,0.9,0.975"],
        (0.025, 0.1, 0.5, 0.9, 0.975),
        "[0.025, 0.1, 0.5, 0.9, 0.975]",
    ),
    "mc_samples": (["--mc-samples", "20"], 20, "20"),
    "adaptive_gamma": (["--adaptive-gamma", "0.005"], 0.005, "0.005"),
    "plot_step": (["--plot-step", "2"], 2, "2"),
}


def test_every_field_has_a_sample_that_is_not_its_default():
    assert set(SAMPLES) == FIELDS  # a new RunConfig field needs a flag (and a sample here)
    defaults = RunConfig()
    for name, (_, value, _) in SAMPLES.items():
        assert getattr(defaults, name) != value, name


def flags(names) -> list[str]:
    return [word for name in names for word in SAMPLES[name][0]]


def check(config: RunConfig, names) -> None:
    for name in names:
        assert getattr(config, name) == SAMPLES[name][1], name


@pytest.fixture
def captured(monkeypatch):
    """Stop each command where it would start training and keep what it was handed."""
    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def train_run(data, config, out_dir, **_):
        seen["config"] = config
        raise Stop

    def compare_models(data, base, names, out_dir, **_):
        seen["config"], seen["names"] = base, names
        raise Stop

    def tune(data, **kwargs):
        seen.update(kwargs)
        raise Stop

    def run_benchmark(path, protocol, models, horizons, lookback, seeds, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr("lstmcast.workflows.runs.train_run", train_run)
    monkeypatch.setattr("lstmcast.workflows.runs.compare_models", compare_models)
    monkeypatch.setattr("lstmcast.workflows.tuning.tune", tune)
    monkeypatch.setattr("lstmcast.workflows.benchmark.run_benchmark", run_benchmark)
    seen["Stop"] = Stop
    return seen


def invoke(captured, *args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, captured["Stop"]), (result.output, result.exception)
    return result


def test_train_takes_every_field_as_a_flag(captured, csv_file, tmp_path):
    invoke(captured, "train", csv_file, "--out", tmp_path, *flags(FIELDS))
    check(captured["config"], FIELDS)


def test_train_takes_every_field_as_a_toml_key(captured, csv_file, tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("\n".join(f"{name} = {SAMPLES[name][2]}" for name in sorted(FIELDS)))
    invoke(captured, "train", csv_file, "--config", toml, "--out", tmp_path)
    check(captured["config"], FIELDS)


def test_compare_takes_every_field_but_model(captured, csv_file):
    names = FIELDS - {"model"}  # compare trains the models given by --models
    invoke(captured, "compare", csv_file, "--models", "linear,mean", *flags(names))
    check(captured["config"], names)
    assert captured["names"] == ["linear", "mean"]


def test_tune_fixes_searched_flags_and_keeps_the_rest(captured, csv_file, tmp_path):
    invoke(captured, "tune", csv_file, "--out", tmp_path, *flags(FIELDS))
    search, base = captured["search"], captured["base"]
    # searched dimensions given as flags are fixed in the search table
    assert search["lr"] == 0.01 and search["dropout"] == 0.1 and search["lookback"] == 7
    assert (search["layers"], search["units"]) == (2, 8)
    assert search["optimizer"] == "adamw" and search["loss"] == "mae"
    assert search["batch_size"] == 16 and search["activation"] == "tanh"
    assert search["bidirectional"] is True
    assert captured["model"] == "lstm" and captured["seed"] == 5
    fixed = make_config(base)
    check(fixed, FIELDS - set(search) - {"layers", "model", "seed"})


def test_benchmark_takes_what_its_protocol_leaves_free(captured, csv_file):
    invoke(captured, "benchmark", csv_file, *flags(BENCHMARK_FREE))
    options = captured["options"]
    assert set(options) == set(BENCHMARK_FREE)
    config = make_config(options)
    check(config, BENCHMARK_FREE)


def test_help_shows_the_defaults_of_runconfig_and_the_choices():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "250"})
    text = " ".join(result.output.split())
    defaults = dataclasses.asdict(RunConfig())
    assert (
        defaults["lookback"] is None and "[default: from the data's frequency and length]" in text
    )
    assert f"[default: {defaults['horizon']}]" in text
    assert f"[default: {defaults['clip_norm']}]" in text
    assert "[error|ffill|interpolate]" in text and "[adam|adamw|rmsprop|sgd]" in text


def test_a_bad_choice_is_one_line_naming_the_option(csv_file, tmp_path):
    result = CliRunner().invoke(
        app, ["train", csv_file, "--optimizer", "adagrad", "--out", str(tmp_path), "-q"]
    )
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'optimizer' parameter must be one of adam" in lines[0]


def test_the_command_list_gives_each_command_one_line():
    # Typer's rich markup mode kept a docstring's line breaks in its first paragraph, so a
    # summary that wrapped in the source wrapped mid-sentence in `lstmcast --help`.
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    panel = result.output.split("─ Commands ")[1].split("╰")[0]
    lines = [line for line in panel.splitlines() if line.startswith("│ ")]
    names = [line.split()[1] for line in lines]
    assert "train" in names and "predict" in names and "backtest" in names
    assert all(name.isidentifier() for name in names), lines  # no continuation lines


@pytest.mark.parametrize("command", ["train", "evaluate", "backtest", "tune", "benchmark"])
def test_help_paragraphs_reflow_to_the_terminal(command):
    # Markdown mode joins a docstring's source lines into paragraphs; Typer's rich mode kept
    # each line break, so at 80 columns every source line wrapped on its own, leaving stubs.
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    text = result.output.split("Usage:")[1].split("╭")[0].splitlines()[1:]
    paragraphs = "\n".join(line.rstrip() for line in text).strip().split("\n\n")
    for paragraph in paragraphs:
        *inner, _last = paragraph.splitlines()
        assert all(len(line) >= 60 for line in inner), paragraph


def test_help_groups_every_run_option_in_one_panel():
    placed = [name for names in PANELS.values() for name in names]
    assert sorted(placed) == sorted(FIELDS)  # each field once: a new field must be placed
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    titles = [
        line.split("─ ")[1].split(" ─")[0] for line in result.output.splitlines() if "╭─" in line
    ]
    assert titles == ["Arguments", "Options", *PANELS]
    model_panel = result.output.split("─ Model ")[1].split("╰")[0]
    assert (
        "--ensemble" in model_panel and "--revin" in model_panel and "--epochs" not in model_panel
    )
