"""The `lstmcast` command line (Typer). User mistakes print one line on stderr and exit 2.

torch is imported inside the commands, so `lstmcast --help` answers at once."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lstmcast import choices
from lstmcast.choices import values
from lstmcast.cli.options import Nproc, choice_metavar, run_options
from lstmcast.cli.progress import epoch_progress, file_progress, trial_lines
from lstmcast.config import RunConfig, make_config, read_toml
from lstmcast.errors import ConfigError, LstmcastError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    help="Multivariate time-series forecasting with LSTM networks.",
)
# Piped output (CI logs, `| tee`) gets a fixed width so tables don't fold into ellipses.
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


@contextlib.contextmanager
def user_errors(resume_hint: str = "") -> Iterator[None]:
    """Turn lstmcast's own errors (bad data, options, model files) into one line + exit 2;
    Ctrl-C exits 130, saying how to go on from the checkpoint: `resume_hint` "flag" (the
    command with --resume) or "again" (the same command resumes)."""
    try:
        yield
    except LstmcastError as exc:
        from rich.markup import escape  # a message's brackets are text: 'lstmcast[postgres]'

        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        if resume_hint in ("again", "flag"):
            command = resume_command(typed_words(), resume_hint)
            err.print(
                f"interrupted; the last finished epoch is saved. Resume with: {command}",
                highlight=False,
                soft_wrap=True,
            )
        else:
            err.print("interrupted")
        raise typer.Exit(130) from None


# `train --nproc N` tells its torchrun workers the command line as typed (a JSON list): they
# run it less --nproc, and rank 0's Ctrl-C hint must repeat it whole.
LAUNCHED_AS = "LSTMCAST_LAUNCHED_AS"


def typed_words() -> list[str]:
    """The words after `lstmcast` of the command the user typed: sys.argv's, or in a torchrun
    worker of `train --nproc N` the launcher's (LAUNCHED_AS)."""
    from lstmcast.engine import distributed

    given = os.environ.get(LAUNCHED_AS)
    if given is not None and distributed.launched():
        with contextlib.suppress(ValueError):
            words = json.loads(given)
            if isinstance(words, list) and all(isinstance(w, str) for w in words):
                return words
    return sys.argv[1:]


def resume_command(words: list[str], resume_hint: str) -> str:
    """The command that goes on from the checkpoint: `words` as they were ("again": the same
    command resumes), or with --resume once, at the end ("flag")."""
    if resume_hint == "flag":
        words = [*(w for w in words if w != "--resume"), "--resume"]
    return shlex.join(["lstmcast", *words])


def one_process(command: str, instead: str) -> None:
    """Refuse `command` under a torchrun of several processes (only `train` trains with DDP);
    rank 0 alone says so, the other ranks exit 2 quietly."""
    from lstmcast.engine import distributed

    try:
        distributed.check_one_process(command, instead)
    except ConfigError:
        if not distributed.is_leader():
            raise typer.Exit(2) from None
        raise


# ------------------------------------------------------------ arguments shared by commands
DataArg = Annotated[
    str, typer.Argument(help="CSV/Parquet file, or a bundled dataset name (etth1).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML file of options; flags override it.")
]
RunDir = Annotated[Path, typer.Argument(help="Run or model directory written by `lstmcast train`.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
Levels = Annotated[
    str | None,
    typer.Option(
        "--intervals",
        help="Interval levels, e.g. 0.8,0.95, among those the model was trained for; "
        "'none' for point forecasts only. \\[default: the trained levels]",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def resolve_config(config_file: Path | None, flags: dict[str, Any]) -> RunConfig:
    """Defaults < TOML file < flags that were given."""
    return make_config(merged_options(config_file, flags))


def merged_options(config_file: Path | None, flags: dict[str, Any]) -> dict[str, Any]:
    """The TOML file's run options (its tables other than model_options left out) with the
    flags that were given on top; model_options tables are merged, flags winning."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(
            {
                k: v
                for k, v in read_toml(config_file).items()
                if not isinstance(v, dict) or k == "model_options"
            }
        )
    given = dict(flags)
    if "model_options" in given:
        given["model_options"] = {**values.get("model_options", {}), **given["model_options"]}
    values.update(given)
    return values


def resolve_data(data: str) -> Any:
    """A path as given, or the DataFrame of a bundled dataset when no such file exists."""
    from lstmcast import datasets

    if not Path(data).exists() and data.lower() in datasets.DATASETS:
        return datasets.load(data)
    return data


def parse_levels(text: str | None) -> tuple[float, ...] | None:
    """--intervals of evaluate/predict: None = the trained levels, 'none' = no intervals."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    from lstmcast.config import as_tuple

    return as_tuple("intervals", text, float)


def warn_if_diverged(training: dict[str, Any]) -> None:
    if training.get("stopped") == "diverged":
        err.print(f"[yellow]warning:[/] {training['message']}", highlight=False)


# --------------------------------------------------------------------------------- commands
@app.command("models")
def list_models() -> None:
    """List the model names with one line each."""
    from lstmcast.models import MODELS

    table = Table("model", "description", box=None)
    for name, description in MODELS.items():
        table.add_row(name, description)
    out.print(table)


@app.command()
@run_options()
def train(
    data: DataArg,
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory to write.")] = Path(
        "runs/latest"
    ),
    config: ConfigOpt = None,
    quiet: Quiet = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Go on from the checkpoint an interrupted or killed run left for --out.",
        ),
    ] = False,
    allow_untrained: Annotated[
        bool,
        typer.Option(
            "--allow-untrained",
            help="Keep a model that learned nothing (every epoch diverged or none improved).",
        ),
    ] = False,
    nproc: Nproc = None,
    *,
    run: dict[str, Any],
) -> None:
    """Train a model, evaluate it on the test split beside the simple baselines, and write the run.

    The verdict compares the model with the best of repeat_last, mean and (where a season is
    found or given) seasonal_naive, overall and for each variable.

    A checkpoint is kept after every epoch: after Ctrl-C or a kill, add --resume.
    Under torchrun (`torchrun --nproc-per-node N -m lstmcast train ...`) or with --nproc N,
    the processes train one model with DistributedDataParallel; rank 0 writes and prints."""
    from lstmcast.engine import distributed

    leader = distributed.is_leader()
    if not leader:  # under torchrun only rank 0 speaks; the others' errors are rank 0's too
        out.quiet = err.quiet = True
    with user_errors(resume_hint="flag"):
        run_config = resolve_config(config, run)
        if nproc is not None:
            distributed.check_launch(nproc, run_config.device, run_config.batch_size)
        if nproc is not None and nproc > 1:
            raise typer.Exit(_launch(nproc))
        from lstmcast.workflows.runs import train_run

        with (
            distributed.session(run_config.device),
            file_progress(err, quiet or not leader) as progress,  # --memmap's one-time build
            epoch_progress(err, quiet or not leader) as callbacks,
        ):
            metrics = train_run(
                resolve_data(data),
                run_config,
                out_dir,
                callbacks=callbacks,
                resume=resume,
                allow_untrained=allow_untrained,
                progress=progress,
            )
        if not leader:
            return
        warn_if_diverged(metrics["training"])
        print_metrics(metrics)
        err.print(f"wrote {out_dir}", highlight=False)


def _launch(nproc: int) -> int:
    """`train --nproc N`: N torchrun workers run this command less --nproc, told the command
    as typed (LAUNCHED_AS) so that a Ctrl-C hint keeps --nproc N; their exit code."""
    from lstmcast.engine import distributed

    words = sys.argv[1:]
    before = os.environ.get(LAUNCHED_AS)
    os.environ[LAUNCHED_AS] = json.dumps(words)
    try:
        return distributed.launch(nproc, _without_nproc(words))
    finally:
        if before is None:
            os.environ.pop(LAUNCHED_AS, None)
        else:
            os.environ[LAUNCHED_AS] = before


def _without_nproc(words: list[str]) -> list[str]:
    """The command line less its --nproc (what each torchrun worker runs)."""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--nproc":
            skip = True
        elif not word.startswith("--nproc="):
            kept.append(word)
    return kept


@app.command()
def evaluate(
    run: RunDir,
    data: DataArg,
    split: Annotated[
        str,
        typer.Option(
            help="Part of DATA to evaluate.", metavar=choice_metavar(values(choices.Part))
        ),
    ] = "test",
    intervals: Levels = None,
    as_json: JsonOut = False,
) -> None:
    """Evaluate a saved model on DATA's split beside the simple baselines, as train does."""
    with user_errors():
        from lstmcast.workflows.forecaster import load

        metrics = load(run).evaluate(
            resolve_data(data), split=split, intervals=parse_levels(intervals)
        )
        if as_json:
            print(json.dumps(metrics, indent=2))
        else:
            print_metrics(metrics)


@app.command()
def predict(
    run: RunDir,
    data: DataArg,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="CSV to write; stdout if absent.")
    ] = None,
    intervals: Levels = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also draw the forecast after the last rows into this PNG."),
    ] = None,
    future: Annotated[
        Path | None,
        typer.Option(
            "--future",
            help="CSV/Parquet of the known-future covariates over the horizon (time column, "
            "id column for a long table, those columns); or put them in DATA's rows after the "
            "last observed target, with the targets left empty.",
        ),
    ] = None,
    ids: Annotated[
        str | None,
        typer.Option("--ids", help="Long table: forecast only these series, e.g. A,B."),
    ] = None,
) -> None:
    """Forecast the horizon steps after DATA's last row.

    With intervals, a lower and an upper column per target and the interval level; for a long
    table, every series' steps in long format (id, time, targets)."""
    with user_errors():
        from lstmcast.config import as_tuple
        from lstmcast.files import atomic_write, check_output_file
        from lstmcast.workflows.forecaster import load

        for path, option in ((out_file, "--out"), (plot, "--plot")):
            if path is not None:
                check_output_file(path, option)
        from lstmcast.workflows.runs import write_future

        forecaster = load(run)
        levels = parse_levels(intervals)
        chosen = list(as_tuple("ids", ids, str)) if ids is not None else None
        frame = forecaster.predict(resolve_data(data), intervals=levels, future=future, ids=chosen)
        if frame.attrs.get("note"):
            err.print(f"[yellow]note:[/] {frame.attrs['note']}", highlight=False)
        if plot is not None:
            write_future(forecaster, resolve_data(data), plot, intervals=levels, future=future)
            err.print(f"wrote {plot}", highlight=False)
        text = frame.to_csv(index=forecaster.state_.inputs.id_col is None)
        if out_file is None:
            sys.stdout.write(text)
        else:
            atomic_write(out_file, text.encode())
            err.print(f"wrote {out_file}", highlight=False)


@app.command()
@run_options(exclude=("model",))
def compare(
    data: DataArg,
    models: Annotated[
        str, typer.Option(help="Comma-separated model names (see `lstmcast models`).")
    ] = "simple,stacked,bidirectional,linear,repeat_last",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also write each run here.")] = None,
    config: ConfigOpt = None,
    quiet: Quiet = False,
    as_json: JsonOut = False,
    *,
    run: dict[str, Any],
) -> None:
    """Train several models on the same data and split; print one table."""
    names = [m.strip() for m in models.split(",") if m.strip()]
    with user_errors():
        one_process("compare", "run compare once")
        from lstmcast.workflows.runs import compare_models

        base = resolve_config(config, run)
        with epoch_progress(err, quiet) as callbacks:
            rows = compare_models(resolve_data(data), base, names, out_dir, callbacks=callbacks)
        for row in rows:
            warn_if_diverged(row)
        if as_json:
            print(json.dumps({"results": rows}, indent=2))
        else:
            print_comparison(rows)


@app.command("backtest")
@run_options()
def backtest_command(
    data: DataArg,
    folds: Annotated[int, typer.Option(help="Blocks of forecast origins, each its own fold.")] = 5,
    origin_step: Annotated[
        int, typer.Option("--origin-step", help="Rows between forecast origins.")
    ] = 1,
    refit: Annotated[
        str, typer.Option(help="Which folds train: every, never (only the first), or K.")
    ] = "every",
    window: Annotated[
        str,
        typer.Option(
            help="Training window: all rows before the fold, or the last --train-rows.",
            metavar=choice_metavar(values(choices.Window)),
        ),
    ] = "expanding",
    train_rows: Annotated[
        int | None, typer.Option("--train-rows", help="Rows per sliding training window.")
    ] = None,
    gap: Annotated[
        int, typer.Option(help="Embargo rows between the last training row and the first forecast.")
    ] = 0,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory to write (and to resume from).")
    ] = Path("runs/backtest"),
    config: ConfigOpt = None,
    quiet: Quiet = False,
    as_json: JsonOut = False,
    *,
    run: dict[str, Any],
) -> None:
    """Rolling-origin backtest with refits, against the simple baselines and a Diebold-Mariano test.

    Refits on a schedule, forecasts every origin of each fold, scores each fold beside
    repeat_last, mean and (where a season is found or given) seasonal_naive, and tests the
    model against repeat_last (Diebold-Mariano). Re-running the same command resumes at the
    first unfinished fold."""
    with user_errors(resume_hint="again"):
        one_process("backtest", "run backtest once")
        from lstmcast.workflows.backtesting import Plan, backtest

        plan = Plan(folds, origin_step, refit, window, train_rows, gap)
        run_config = resolve_config(config, run)

        def progress(summary: dict[str, Any]) -> None:
            if not quiet:
                how = (
                    "resumed"
                    if summary.get("resumed")
                    else (
                        "trained"
                        if summary["trained"]
                        else f"model of fold {summary['model_from_fold']}"
                    )
                )
                err.print(
                    f"fold {summary['fold']}/{plan.folds} ({how}): {summary['n_origins']} origins, "
                    f"skill {_fmt(summary['skill'])}",
                    highlight=False,
                )

        with epoch_progress(err, quiet) as callbacks:
            report = backtest(
                resolve_data(data),
                run_config,
                plan,
                out_dir,
                callbacks=callbacks,
                on_fold=progress,
            )
        if as_json:
            print(json.dumps(report, indent=2))
        else:
            print_backtest(report)
        err.print(f"wrote {out_dir}", highlight=False)


def print_backtest(report: dict[str, Any]) -> None:
    """Per fold: the model beside repeat_last, mean and (with a season) seasonal_naive; the
    mean ± std over folds; the model against the best of them; the Diebold-Mariano verdicts."""
    names = [name for name in report["aggregate"] if name != "skill"]
    table = Table(
        title=f"backtest of {report['model']}: {report['n_folds']} folds, "
        f"{report['n_origins']} origins, horizon {report['horizon']} (scaled"
        + (", levels rebuilt from the trained transform)" if "transform" in report else ")")
    )
    columns = ["fold", "first origin", "origins", "trained"]
    columns += [f"MSE {name}" for name in names] + ["skill"]
    if "intervals" in report["folds"][0]:
        columns += [f"cov {key}" for key in report["folds"][0]["intervals"]]
    for column in columns:
        table.add_column(column, justify="left" if column == "first origin" else "right")
    for fold in report["folds"]:
        row = [
            str(fold["fold"]),
            str(fold["first_origin"]),
            str(fold["n_origins"]),
            "yes" if fold["trained"] else f"fold {fold['model_from_fold']}",
        ]
        row += [_fmt(fold["metrics"][name]["scaled"]["mse"]) for name in names]
        row.append(_fmt(fold["skill"]))
        row += [_fmt(v["coverage"]) for v in fold.get("intervals", {}).values()]
        table.add_row(*row)
    aggregate = report["aggregate"]
    mean_row = ["mean ± std", "", str(report["n_origins"]), ""]
    mean_row += [
        f"{_fmt(aggregate[name]['scaled']['mse']['mean'])} ± "
        f"{_fmt(aggregate[name]['scaled']['mse']['std'])}"
        for name in names
    ]
    mean_row.append(f"{_fmt(aggregate['skill']['mean'])} ± {_fmt(aggregate['skill']['std'])}")
    table.add_row(*mean_row, *([""] * (len(columns) - len(mean_row))))
    out.print(table)
    if "best_baseline" in report:
        best, skill = report["best_baseline"], report["skill_vs_best"]
        colour = "green" if skill is not None and skill > 0 else "yellow"
        out.print(
            f"[{colour}]against the best simple baseline over the folds ({best}): skill "
            f"{_fmt(skill)} (1 - mean model MSE / mean {best} MSE)[/]",
            highlight=False,
        )
    for test in report["diebold_mariano"].values():
        colour = {"better": "green", "worse": "red"}.get(test["verdict"], "yellow")
        out.print(f"[{colour}]{test['verdict_line']}[/]", highlight=False)


# What the benchmark protocol leaves free: the model and the training, not the data handling.
BENCHMARK_FREE = (
    "layers",
    "dropout",
    "activation",
    "bidirectional",
    "period",
    "model_options",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "weight_decay",
    "loss",
    "patience",
    "clip_norm",
    "divergence_retries",
    "device",
    "cuda_graph",
    "amp",
)


@app.command()
@run_options(only=BENCHMARK_FREE, epochs="per model", batch_size="per model", lr="per model")
def benchmark(
    data: Annotated[str, typer.Argument(help="CSV file, every column a variable.")],
    protocol: Annotated[
        str,
        typer.Option(
            help="ett-hourly, ett-minute or ratio (0.7 train / 0.2 test).",
            metavar=choice_metavar(values(choices.Protocol)),
        ),
    ] = "ett-hourly",
    models: Annotated[str, typer.Option(help="Comma-separated model names.")] = "repeat_last",
    horizons: Annotated[str, typer.Option(help="Comma-separated horizons.")] = "96",
    lookback: Annotated[int, typer.Option(help="Input window length L.")] = 96,
    seeds: Annotated[int, typer.Option(help="Runs per model and horizon (seeds 0..N-1).")] = 1,
    quiet: Quiet = False,
    as_json: JsonOut = False,
    *,
    run: dict[str, Any],
) -> None:
    """The standard long-horizon benchmark protocol (LTSF): MSE/MAE on the z-scale.

    Fixed splits, a z-score fitted on the train rows only, every test window, MSE/MAE on the
    z-scale over all variables."""
    with user_errors():
        from lstmcast.checks import check_int
        from lstmcast.config import as_tuple
        from lstmcast.workflows.benchmark import run_benchmark, summarise

        names = as_tuple("models", models, str)
        steps = as_tuple("horizons", horizons, int)
        check_int("seeds", seeds)

        def report(row: dict[str, Any]) -> None:
            if not quiet:
                err.print(
                    f"{row['model']} H={row['horizon']} seed {row['seed']}: "
                    f"mse {row['mse']:.4f} mae {row['mae']:.4f} ({row['train_seconds']:.1f} s)",
                    highlight=False,
                )

        rows = run_benchmark(
            data, protocol, names, steps, lookback, range(seeds), options=run, on_run=report
        )
        if as_json:
            print(json.dumps({"results": rows}, indent=2))
            return
        table = Table(title=f"{Path(data).name}, {protocol}, lookback {lookback} (z-scale, test)")
        for column in ("model", "horizon", "MSE", "MAE", "val MSE", "train s", "runs"):
            table.add_column(column, justify="left" if column == "model" else "right")
        for s in summarise(rows):
            table.add_row(
                s["model"],
                str(s["horizon"]),
                f"{s['mse']:.4f} ± {s['mse_std']:.4f}",
                f"{s['mae']:.4f} ± {s['mae_std']:.4f}",
                f"{s['val_mse']:.4f}",
                f"{s['train_seconds']:.1f}",
                str(s["n"]),
            )
        out.print(table)


@app.command()
@run_options(model="lstm")
def tune(
    data: DataArg,
    trials: Annotated[
        int, typer.Option(help="Trials in total for the study, counted over every worker.")
    ] = 50,
    timeout: Annotated[
        float | None, typer.Option(help="Stop starting trials after this many seconds.")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL or SQLite file of the study. \\[default: OUT/study.db]"),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="Study name; workers on one storage and name share it. "
            "\\[default: lstmcast-MODEL]",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML: fixed options (train's keys) and a \\[search] table."),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for the best model, plots and the study.")
    ] = Path("runs/tune"),
    folds: Annotated[
        int | None,
        typer.Option(help="Score trials on K walk-forward folds, not the one validation split."),
    ] = None,
    pruner: Annotated[
        str, typer.Option(metavar=choice_metavar(values(choices.Pruner)), help="Trial pruner.")
    ] = "median",
    quiet: Quiet = False,
    *,
    run: dict[str, Any],
) -> None:
    """Search hyperparameters with Optuna, retrain the best and evaluate it on test.

    The study is resumable and workers may share it. The best trial is retrained on
    train+validation, evaluated on test beside the simple baselines (as train) and saved in --out.

    Every run option is accepted; a flag for a searched dimension (lr, dropout, layers, ...)
    fixes that dimension, the others are fixed for every trial."""
    with user_errors(resume_hint="again"):
        one_process("tune", "run tune once, or its workers with --storage")
        from lstmcast.workflows.tuning import tune as run_tune
        from lstmcast.workflows.tuning.report import trials_table
        from lstmcast.workflows.tuning.space import fix_searched

        values_ = read_toml(config) if config is not None else {}
        search = values_.pop("search", None)
        base = merged_options(None, {**values_, **run})
        search, base = fix_searched(search, base, given=set(run))
        model, seed = base.pop("model", "lstm"), base.pop("seed", 0)
        with epoch_progress(err, quiet) as callbacks:
            result = run_tune(
                resolve_data(data),
                model=model,
                trials=trials,
                timeout=timeout,
                storage=storage,
                study_name=study,
                base=base,
                search=search,
                folds=folds,
                out=out_dir,
                seed=seed,
                pruner=pruner,
                on_trial=None if quiet else trial_lines(err, trials),
                callbacks=callbacks,
            )
        warn_if_diverged(result.metrics["training"])
        out.print(trials_table(result.study))
        print_metrics(result.metrics)
        err.print(f"wrote {out_dir}", highlight=False)


def print_metrics(metrics: dict[str, Any]) -> None:
    space = ", levels rebuilt from the trained transform" if "transform" in metrics else ""
    variables = len(metrics.get("per_variable", {}))
    # Averaged over columns in their own units, the largest-valued column decides MSE and MAE.
    mixed = f"MSE, MAE: the mean over {variables} variables in their own units; per variable below"
    table = Table(
        title=f"{metrics['split']} split: {metrics['n_windows']} windows, "
        f"horizon {metrics['horizon']}{space}",
        caption=mixed if variables > 1 else None,
    )
    for column in ("model", "MSE (scaled)", "MAE (scaled)", "MSE", "MAE", "MASE", "direction"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for key in ("model", *metrics.get("baselines", ["repeat_last"])):
        section = metrics[key]
        table.add_row(
            section["name"],
            _fmt(section["scaled"]["mse"]),
            _fmt(section["scaled"]["mae"]),
            _fmt(section["original"]["mse"]),
            _fmt(section["original"]["mae"]),
            _fmt(section["original"]["mase"]),
            _fmt(section["original"]["directional_accuracy"]),
        )
    out.print(table)
    colour = "green" if metrics.get("beats_best_baseline", metrics["beats_naive"]) else "yellow"
    out.print(f"[{colour}]{metrics['verdict']}[/]", highlight=False)
    if "ensemble" in metrics:
        members = metrics["ensemble"]
        mse = members["mse_scaled"]
        line = (
            f"ensemble: {len(members['kept'])} of {members['members']} members in the "
            f"{members.get('reduce', 'mean')}; "
            f"member MSE (scaled) {_fmt(min(mse))}-{_fmt(max(mse))}, spread "
            f"{_fmt(members['spread_scaled'])}"
        )
        epochs = (metrics.get("training") or {}).get("member_best_epochs")
        if epochs:  # each member kept its own best validation epoch
            line += f"; members' best epochs {', '.join(map(str, epochs))}"
        if members["dropped_on_validation"]:
            line += f"; dropped on validation (blew up): {members['dropped_on_validation']}"
        if members["far_off"]:
            line += f"; [yellow]far off the others here: {members['far_off']}[/]"
        out.print(line, highlight=False)
    if metrics.get("derived"):
        chosen = ", ".join(
            f"{c['name']} {_shown(c['value'])} ({c['why']})" for c in metrics["derived"]
        )
        out.print(f"chosen from the data: {chosen}", highlight=False)
    if variables > 1:
        print_variables(metrics)
    for note in metrics.get("notes", []):
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    if "far_from_training" in metrics:
        out.print(f"[yellow]warning:[/] {metrics['far_from_training']['note']}", highlight=False)
    if "transformed" in metrics:
        trained = metrics["transformed"]
        kinds = ", ".join(f"{c}={k}" for c, k in metrics["transform"].items())
        out.print(
            f"in the trained space ({kinds}): MSE {_fmt(trained['model']['original']['mse'])}"
            f", repeat_last {_fmt(trained['repeat_last']['original']['mse'])}, skill "
            f"{_fmt(trained['skill'])}",
            highlight=False,
        )
    if "market" in metrics:
        print_market(metrics["market"])
    if "intervals" in metrics:
        print_intervals(metrics["intervals"])
    if "per_series" in metrics:
        print_series(metrics)


def print_market(report: dict[str, Any]) -> None:
    """Per target: the sign-of-return hit rate beside always-up and the train majority,
    Theil's U2, and the long/short illustration beside buy-and-hold."""
    table = Table(title="market measures (levels; hit rate: sign of each step's return)")
    columns = ("target", "hit rate", "always up", "majority", "Theil U2", "long/short", "Sharpe")
    for column in (*columns, "buy & hold", "Sharpe "):
        table.add_column(column, justify="left" if column == "target" else "right")
    hits, u2 = report["hit_rate"]["per_variable"], report["theil_u2"]["per_variable"]
    for name, trade in report["trading"]["per_variable"].items():
        strategy, hold = trade.get("strategy") or {}, trade.get("buy_and_hold") or {}
        table.add_row(
            name,
            _fmt(hits[name]["model"]),
            _fmt(hits[name]["always_up"]),
            _fmt(hits[name]["majority"]),
            _fmt(u2[name]),
            _fmt(strategy.get("cumulative_return")),
            _fmt(strategy.get("sharpe_annualised", strategy.get("sharpe"))),
            _fmt(hold.get("cumulative_return")),
            _fmt(hold.get("sharpe_annualised", hold.get("sharpe"))),
        )
    out.print(table)
    out.print(
        f"long/short: step-1 forecast sign, cost {report['trading']['cost_bps']:g} bps. "
        "An illustration, not investment advice.",
        highlight=False,
    )


ROWS_SHOWN = 20  # rows of the per-variable and per-series tables; metrics.json has all


def print_variables(metrics: dict[str, Any]) -> None:
    """Per variable, in its own units: the model beside that variable's best simple baseline,
    worst skill first when there are more than fit."""
    verdicts = metrics["per_variable"]
    names = list(verdicts) if len(verdicts) <= ROWS_SHOWN else _worst_first(verdicts)
    table = _verdict_table("variable", names, "original units")
    for name in names[:ROWS_SHOWN]:
        verdict, model = verdicts[name], metrics["model"]["per_variable"][name]["original"]
        best = verdict["best_baseline"]
        table.add_row(
            name,
            _fmt(model["mse"]),
            _fmt(model["mae"]),
            _fmt(model["mase"]),
            _fmt(model["directional_accuracy"]),
            best,
            _fmt(metrics[best]["per_variable"][name]["original"]["mse"]),
            _skill_cell(verdict),
        )
    out.print(table)
    _print_beaten(verdicts, "variables", "")


def print_series(metrics: dict[str, Any]) -> None:
    """Per series: the model beside that series' best simple baseline (scaled), worst skill
    first, as `print_variables` does per variable."""
    verdicts = metrics["per_series"]
    names = _worst_first(verdicts)
    table = _verdict_table("series", names, "scaled")
    for name in names[:ROWS_SHOWN]:
        section = verdicts[name]
        best = section["best_baseline"]
        table.add_row(
            name,
            str(section["n_windows"]),
            _fmt(section["model"]["scaled"]["mse"]),
            _fmt(section["model"]["scaled"]["mae"]),
            best,
            _fmt(section[best]["scaled"]["mse"]),
            _skill_cell(section),
        )
    out.print(table)
    naive = sum(1 for section in verdicts.values() if section["beats_naive"])
    _print_beaten(verdicts, "series", f"repeat_last on {naive}; ")
    skipped = metrics.get("skipped_series") or []
    if skipped:
        listed = "; ".join(f"{s['id']} ({s['reason']})" for s in skipped[:5])
        extra = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        out.print(
            f"[yellow]skipped {len(skipped)} series too short for the split:[/] {listed}{extra}",
            highlight=False,
        )


def _worst_first(verdicts: dict[str, Any]) -> list[str]:
    """The names, lowest skill against their best baseline first (no skill last)."""
    skills = {name: verdicts[name]["skill_vs_best"] for name in verdicts}
    return sorted(skills, key=lambda n: float("inf") if skills[n] is None else skills[n])


def _verdict_table(what: str, names: list[str], units: str) -> Table:
    """The per-variable or per-series table's title and columns (the rows are the caller's)."""
    more = f", the {ROWS_SHOWN} with the lowest skill" if len(names) > ROWS_SHOWN else ""
    table = Table(title=f"per {what} ({len(names)}{more}; {units})")
    if what == "variable":
        columns: tuple[str, ...] = ("variable", "MSE", "MAE", "MASE", "direction")
    else:
        columns = ("series", "windows", "MSE", "MAE")
    for column in (*columns, "best baseline", "its MSE", "skill"):
        table.add_column(column, justify="left" if column in (what, "best baseline") else "right")
    return table


def _skill_cell(verdict: dict[str, Any]) -> str:
    skill = _fmt(verdict["skill_vs_best"])
    return skill if verdict["beats_best_baseline"] else f"[yellow]{skill}[/]"


def _print_beaten(verdicts: dict[str, Any], what: str, also: str) -> None:
    beaten = sum(1 for verdict in verdicts.values() if verdict["beats_best_baseline"])
    out.print(
        f"beats its best simple baseline on {beaten} of {len(verdicts)} {what} ({also}skill: "
        "1 - model MSE / that baseline's MSE)",
        highlight=False,
    )


def print_intervals(report: dict[str, Any]) -> None:
    """Coverage, width and interval score per level, the model beside repeat_last's band."""
    table = Table(title=f"prediction intervals ({report.get('method', '')}, scaled)")
    for column in ("level", "model", "coverage", "width", "interval score", "pinball", "CRPS"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for key in report["model"]["scaled"]:
        for name in ("model", "repeat_last"):
            section = report[name]["scaled"][key]
            table.add_row(
                key,
                name,
                _fmt(section["coverage"]),
                _fmt(section["width"]),
                _fmt(section["interval_score"]),
                _fmt(section["pinball"]),
                _fmt(report[name]["crps_scaled"]),
            )
    out.print(table)
    for line in report["verdict"]:
        out.print(line, highlight=False)


def print_comparison(rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"test split, horizon {rows[0]['horizon'] if rows else '-'}")
    levels = list(next((r["intervals"] for r in rows if r.get("intervals")), None) or {})
    columns = ["model", "MSE (scaled)", "MAE (scaled)", "MSE", "MAE", "skill", "vs best"]
    columns += [f"cov {key}" for key in levels] + [f"IS {key} / naive" for key in levels]
    columns += ["train s", "stopped"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "stopped") else "right")
    bests = {row["best_baseline"] for row in rows}
    # the models share a test split, so one best baseline is the rule: named once, below
    named = len(bests) > 1
    for row in rows:
        bands = row.get("intervals") or {}
        coverage = [_fmt(bands[k]["coverage"]) if k in bands else "-" for k in levels]
        ratio = [
            _fmt(bands[k]["interval_score"] / bands[k]["naive_interval_score"])
            if k in bands and bands[k]["naive_interval_score"]
            else "-"
            for k in levels
        ]
        table.add_row(
            row["model"],
            _fmt(row["mse_scaled"]),
            _fmt(row["mae_scaled"]),
            _fmt(row["mse"]),
            _fmt(row["mae"]),
            _fmt(row["skill"]),
            _fmt(row["skill_vs_best"]) + (f" ({row['best_baseline']})" if named else ""),
            *coverage,
            *ratio,
            f"{row['train_seconds']:.1f}",
            row["stopped"],
        )
    out.print(table)
    which = "" if named or not bests else f" (here {next(iter(bests))})"
    out.print(
        "skill = 1 - model MSE / repeat_last MSE (scaled); vs best: the same against the best "
        f"of repeat_last, mean and seasonal_naive{which}; <= 0 means it does not beat that "
        "baseline.",
        highlight=False,
    )
    if levels:
        out.print(
            "cov = coverage of the interval on test; IS / naive = interval score against "
            "repeat_last's conformal band (< 1: sharper than naive)."
        )


def _shown(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
