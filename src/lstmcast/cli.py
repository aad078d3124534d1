"""The `lstmcast` command line (Typer). User mistakes print one line on stderr and exit 2.

torch is imported inside the commands, so `lstmcast --help` answers at once."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lstmcast.config import RunConfig, make_config, read_toml
from lstmcast.errors import LstmcastError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Multivariate time-series forecasting with LSTM networks.",
)
# Piped output (CI logs, `| tee`) gets a fixed width so tables don't fold into ellipses.
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn lstmcast's own errors (bad data, options, model files) into one line + exit 2."""
    try:
        yield
    except LstmcastError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


# ---------------------------------------------------------------- options shared by commands
DataArg = Annotated[
    str, typer.Argument(help="CSV/Parquet file, or a bundled dataset name (etth1).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML file of options; flags override it.")
]
Lookback = Annotated[int | None, typer.Option(help="Input window length L (rows). \\[default: 10]")]
Horizon = Annotated[int | None, typer.Option(help="Steps to forecast H. \\[default: 1]")]
Targets = Annotated[
    str | None,
    typer.Option(help="Comma-separated columns to forecast. \\[default: every numeric column]"),
]
Covariates = Annotated[str | None, typer.Option(help="Comma-separated input-only columns.")]
TimeCol = Annotated[
    str | None, typer.Option("--time-col", help="Time column. \\[default: auto-detect]")
]
Fill = Annotated[
    str | None, typer.Option(help="Missing values: error, ffill or interpolate. \\[default: error]")
]
Scaler = Annotated[
    str | None, typer.Option(help="standard, minmax, robust or none. \\[default: standard]")
]
ValFraction = Annotated[float | None, typer.Option("--val-fraction", help="\\[default: 0.1]")]
TestFraction = Annotated[float | None, typer.Option("--test-fraction", help="\\[default: 0.2]")]
ValStart = Annotated[str | None, typer.Option("--val-start", help="First timestamp of validation.")]
TestStart = Annotated[str | None, typer.Option("--test-start", help="First timestamp of test.")]
Layers = Annotated[str | None, typer.Option(help="LSTM units per layer, e.g. 64,32.")]
Dropout = Annotated[float | None, typer.Option(help="Dropout after each LSTM layer.")]
Activation = Annotated[str | None, typer.Option(help="tanh (fused), relu, elu, ... (Keras's set).")]
Bidirectional = Annotated[
    bool | None, typer.Option("--bidirectional/--unidirectional", help="Bidirectional LSTM layers.")
]
Period = Annotated[int | None, typer.Option(help="Season length for seasonal_naive.")]
Epochs = Annotated[int | None, typer.Option(help="\\[default: 100]")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", help="\\[default: 32]")]
Optimizer = Annotated[
    str | None, typer.Option(help="adam, adamw, rmsprop or sgd. \\[default: adam]")
]
LearningRate = Annotated[
    float | None, typer.Option("--lr", help="Learning rate. \\[default: 0.001]")
]
Loss = Annotated[str | None, typer.Option(help="mse, mae or huber. \\[default: mse]")]
Patience = Annotated[
    int | None, typer.Option(help="Early-stopping patience in epochs; 0 = off. \\[default: 10]")
]
ClipNorm = Annotated[
    float | None,
    typer.Option("--clip-norm", help="Gradient-norm clip; 0 = off (Keras). \\[default: 1.0]"),
]
DivergenceRetries = Annotated[
    int | None,
    typer.Option(
        "--divergence-retries",
        help="On divergence, restart from the best weights at a quarter of the learning rate, "
        "at most this often; 0 = stop at once. \\[default: 2]",
    ),
]
Seed = Annotated[int | None, typer.Option(help="Random seed. \\[default: 0]")]
Device = Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N. \\[default: auto]")]
Amp = Annotated[
    bool | None, typer.Option("--amp/--no-amp", help="bf16 autocast (CUDA). \\[default: off]")
]
CudaGraph = Annotated[
    bool | None,
    typer.Option(
        "--cuda-graph/--no-cuda-graph",
        help="Replay the training step as a CUDA graph on CUDA. \\[default: on]",
    ),
]
WeightDecay = Annotated[float | None, typer.Option("--weight-decay", help="\\[default: 0]")]
Stride = Annotated[int | None, typer.Option(help="Step between training windows. \\[default: 1]")]
Revin = Annotated[
    bool | None,
    typer.Option(
        "--revin/--no-revin",
        help="lstm family: normalise each window by its own mean/std (reversible). "
        "\\[default: off]",
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def resolve_config(config_file: Path | None, flags: dict[str, Any]) -> RunConfig:
    """Defaults < TOML file < flags that were given."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(
            {
                k: v
                for k, v in read_toml(config_file).items()
                if not isinstance(v, dict) or k == "model_options"
            }
        )
    given = {k: v for k, v in flags.items() if v is not None}
    if "model_options" in given:  # merge with the file's table, flags winning
        given["model_options"] = {**values.get("model_options", {}), **given["model_options"]}
    values.update(given)
    return make_config(values)


def resolve_data(data: str) -> Any:
    """A path as given, or the DataFrame of a bundled dataset when no such file exists."""
    from lstmcast import datasets

    if not Path(data).exists() and data.lower() in datasets.DATASETS:
        return datasets.load(data)
    return data


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
def train(
    data: DataArg,
    model: Annotated[
        str | None, typer.Option(help="Model name (see `lstmcast models`). \\[default: simple]")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory to write.")] = Path(
        "runs/latest"
    ),
    config: ConfigOpt = None,
    lookback: Lookback = None,
    horizon: Horizon = None,
    targets: Targets = None,
    covariates: Covariates = None,
    time_col: TimeCol = None,
    fill: Fill = None,
    scaler: Scaler = None,
    val_fraction: ValFraction = None,
    test_fraction: TestFraction = None,
    val_start: ValStart = None,
    test_start: TestStart = None,
    layers: Layers = None,
    dropout: Dropout = None,
    activation: Activation = None,
    bidirectional: Bidirectional = None,
    period: Period = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    optimizer: Optimizer = None,
    lr: LearningRate = None,
    loss: Loss = None,
    patience: Patience = None,
    clip_norm: ClipNorm = None,
    divergence_retries: DivergenceRetries = None,
    seed: Seed = None,
    device: Device = None,
    amp: Amp = None,
    cuda_graph: CudaGraph = None,
    weight_decay: WeightDecay = None,
    stride: Stride = None,
    revin: Revin = None,
    quiet: Quiet = False,
) -> None:
    """Train a model, evaluate it on the test split beside repeat_last, and write the run."""
    flags = {
        k: v
        for k, v in locals().items()
        if k not in ("data", "out_dir", "config", "quiet", "revin")
    }
    if revin is not None:
        flags["model_options"] = {"revin": revin}
    with user_errors():
        run_config = resolve_config(config, flags)
        from lstmcast.runs import train_run

        metrics = train_run(resolve_data(data), run_config, out_dir, progress=not quiet)
        print_metrics(metrics)
        err.print(f"wrote {out_dir}", highlight=False)


@app.command()
def evaluate(
    run: Annotated[
        Path, typer.Argument(help="Run or model directory written by `lstmcast train`.")
    ],
    data: DataArg,
    split: Annotated[str, typer.Option(help="train, val, test or all.")] = "test",
    as_json: JsonOut = False,
) -> None:
    """Evaluate a saved model on DATA's split beside repeat_last."""
    with user_errors():
        import lstmcast

        metrics = lstmcast.load(run).evaluate(resolve_data(data), split=split)
        if as_json:
            print(json.dumps(metrics, indent=2))
        else:
            print_metrics(metrics)


@app.command()
def predict(
    run: Annotated[
        Path, typer.Argument(help="Run or model directory written by `lstmcast train`.")
    ],
    data: DataArg,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="CSV to write; stdout if absent.")
    ] = None,
) -> None:
    """Forecast the horizon steps after DATA's last row."""
    with user_errors():
        import lstmcast
        from lstmcast.io import atomic_write

        frame = lstmcast.load(run).predict(resolve_data(data))
        text = frame.to_csv()
        if out_file is None:
            sys.stdout.write(text)
        else:
            atomic_write(out_file, text.encode())
            err.print(f"wrote {out_file}", highlight=False)


@app.command()
def compare(
    data: DataArg,
    models: Annotated[
        str, typer.Option(help="Comma-separated model names.")
    ] = "simple,stacked,bidirectional,linear,repeat_last",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also write each run here.")] = None,
    config: ConfigOpt = None,
    lookback: Lookback = None,
    horizon: Horizon = None,
    targets: Targets = None,
    covariates: Covariates = None,
    time_col: TimeCol = None,
    fill: Fill = None,
    scaler: Scaler = None,
    val_fraction: ValFraction = None,
    test_fraction: TestFraction = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    optimizer: Optimizer = None,
    lr: LearningRate = None,
    loss: Loss = None,
    patience: Patience = None,
    clip_norm: ClipNorm = None,
    divergence_retries: DivergenceRetries = None,
    seed: Seed = None,
    device: Device = None,
    quiet: Quiet = False,
    as_json: JsonOut = False,
) -> None:
    """Train several models on the same data and split; print one table."""
    flags = {
        k: v
        for k, v in locals().items()
        if k not in ("data", "models", "out_dir", "config", "quiet", "as_json")
    }
    names = [m.strip() for m in models.split(",") if m.strip()]
    with user_errors():
        from lstmcast.runs import compare_models

        base = resolve_config(config, flags)
        rows = compare_models(resolve_data(data), base, names, out_dir, progress=not quiet)
        if as_json:
            print(json.dumps({"results": rows}, indent=2))
        else:
            print_comparison(rows)


@app.command()
def benchmark(
    data: Annotated[str, typer.Argument(help="CSV file, every column a variable.")],
    protocol: Annotated[
        str, typer.Option(help="ett-hourly, ett-minute or ratio (0.7 train / 0.2 test).")
    ] = "ett-hourly",
    models: Annotated[str, typer.Option(help="Comma-separated model names.")] = "repeat_last",
    horizons: Annotated[str, typer.Option(help="Comma-separated horizons.")] = "96",
    lookback: Annotated[int, typer.Option(help="Input window length L.")] = 96,
    seeds: Annotated[int, typer.Option(help="Runs per model and horizon (seeds 0..N-1).")] = 1,
    epochs: Annotated[int | None, typer.Option(help="\\[default: per model]")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="\\[default: per model]")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="\\[default: per model]")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    quiet: Quiet = False,
    as_json: JsonOut = False,
) -> None:
    """The standard long-horizon protocol: fixed splits, train-only z-score, every test window,
    MSE/MAE on the z-scale over all variables."""
    with user_errors():
        from lstmcast.benchmark import run_benchmark, summarise
        from lstmcast.config import _as_tuple
        from lstmcast.errors import ConfigError

        names = _as_tuple("models", models, str)
        steps = _as_tuple("horizons", horizons, int)
        if seeds < 1:
            raise ConfigError(f"The 'seeds' parameter must be an int >= 1. Got {seeds} instead.")

        def report(row: dict[str, Any]) -> None:
            if not quiet:
                err.print(
                    f"{row['model']} H={row['horizon']} seed {row['seed']}: "
                    f"mse {row['mse']:.4f} mae {row['mae']:.4f} ({row['train_seconds']:.1f} s)",
                    highlight=False,
                )

        rows = run_benchmark(
            data,
            protocol,
            names,
            steps,
            lookback,
            range(seeds),
            epochs,
            batch_size=batch_size,
            lr=lr,
            device=device,
            on_run=report,
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
def tune(
    data: DataArg,
    model: Annotated[
        str | None, typer.Option(help="Model to tune (see `lstmcast models`). \\[default: lstm]")
    ] = None,
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
            help="Study name; workers on one storage and name share it. \\[default: lstmcast-MODEL]",
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
    pruner: Annotated[str, typer.Option(help="median or hyperband.")] = "median",
    seed: Seed = None,
    quiet: Quiet = False,
) -> None:
    """Search hyperparameters with Optuna (resumable; workers may share a study), retrain the
    best on train+validation, evaluate it on test beside repeat_last and save it in --out."""
    with user_errors():
        from lstmcast.tuning import tune as run_tune
        from lstmcast.tuning.report import trials_table

        values = read_toml(config) if config is not None else {}
        search = values.pop("search", None)
        chosen_model = model or values.pop("model", "lstm")
        values.pop("model", None)
        chosen_seed = seed if seed is not None else values.pop("seed", 0)
        values.pop("seed", None)
        try:
            result = run_tune(
                resolve_data(data),
                model=chosen_model,
                trials=trials,
                timeout=timeout,
                storage=storage,
                study_name=study,
                base=values,
                search=search,
                folds=folds,
                out=out_dir,
                seed=chosen_seed,
                pruner=pruner,
                progress=not quiet,
            )
        except KeyboardInterrupt:
            err.print("interrupted; run the same command again to resume the study")
            raise typer.Exit(130) from None
        out.print(trials_table(result.study))
        print_metrics(result.metrics)
        err.print(f"wrote {out_dir}", highlight=False)


def print_metrics(metrics: dict[str, Any]) -> None:
    table = Table(
        title=f"{metrics['split']} split: {metrics['n_windows']} windows, "
        f"horizon {metrics['horizon']}"
    )
    for column in ("model", "MSE (scaled)", "MAE (scaled)", "MSE", "MAE", "MASE", "direction"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for key in ("model", "repeat_last"):
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
    colour = "green" if metrics["beats_naive"] else "yellow"
    out.print(f"[{colour}]{metrics['verdict']}[/]", highlight=False)


def print_comparison(rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"test split, horizon {rows[0]['horizon'] if rows else '-'}")
    for column in (
        "model",
        "MSE (scaled)",
        "MAE (scaled)",
        "MSE",
        "MAE",
        "skill",
        "train s",
        "stopped",
    ):
        table.add_column(column, justify="left" if column in ("model", "stopped") else "right")
    for row in rows:
        table.add_row(
            row["model"],
            _fmt(row["mse_scaled"]),
            _fmt(row["mae_scaled"]),
            _fmt(row["mse"]),
            _fmt(row["mae"]),
            _fmt(row["skill"]),
            f"{row['train_seconds']:.1f}",
            row["stopped"],
        )
    out.print(table)
    out.print(
        "skill = 1 - model MSE / repeat_last MSE (scaled); <= 0 means it does not beat naive."
    )


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
