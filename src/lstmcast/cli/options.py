"""The run options, declared once: one Typer option per `RunConfig` field, with its flag, its
help and the default that help shows (read from `RunConfig` itself), shared by every command
that trains. `run_options(...)` adds them to a command; the command receives the flags that
were given as one dict, the same keys as the TOML file and `Forecaster(**options)`.

Choices list their values from the Enums of `lstmcast.choices`; a value outside them reaches
the library, which answers in one line naming the option and what is allowed (exit code 2).
"""

from __future__ import annotations

import functools
import inspect
import tomllib
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated, Any

import typer

from lstmcast import choices
from lstmcast.config import FIELDS, RunConfig
from lstmcast.errors import ConfigError

# One line of help per field; the default is appended from RunConfig.
HELP: dict[str, str] = {
    "model": "Model name (see `lstmcast models`).",
    "lookback": "Input window length L (rows).",
    "horizon": "Steps to forecast H.",
    "targets": "Comma-separated columns to forecast (default: every numeric column).",
    "covariates": "Comma-separated input-only columns, known up to the forecast origin.",
    "time_col": "Time column (default: auto-detect).",
    "id_col": "Long format: the column naming each series (one global model over all).",
    "future_covariates": "Comma-separated columns known in advance (holidays, promotions): "
    "read over the horizon too; predict needs their future values.",
    "static": "Comma-separated columns constant per series (--id-col); text ones embedded.",
    "calendar": "Calendar features from the timestamps, known in advance: auto, none or e.g. "
    "hour,dayofweek,month.",
    "holidays": "Country code (e.g. US, DE, US-CA) for a public-holiday flag.",
    "macro": "CSV/Parquet of macro data at its own frequency (a time column, value columns), "
    "joined as-of as past covariates.",
    "release_lag": "How long after its date a --macro value is public, e.g. 45D.",
    "exchange": "Market code (e.g. XNYS, XLON): predict's future trading days skip its holidays.",
    "id_embedding": "Width of a learned embedding of the series id (--id-col); 0 = none.",
    "transform": "What targets train as: none, diff, log, returns, log-returns; one for all or "
    "per column, e.g. Close=log-returns,Volume=log. Forecasts are rebuilt to levels.",
    "market": "Report return hit rates, Theil's U2 and an illustrative long/short rule "
    "(on with a returns transform).",
    "cost_bps": "The long/short illustration's cost per unit of position change, in basis points.",
    "fill": "Missing values.",
    "duplicates": "Rows repeating a timestamp (of one series): error, or keep the first, the "
    "last, or their mean.",
    "scaler": "Scaling per variable, fit on the train split.",
    "val_fraction": "Share of rows for validation.",
    "test_fraction": "Share of rows for test.",
    "val_start": "First timestamp of validation.",
    "test_start": "First timestamp of test (alone: no validation split).",
    "stride": "Step between training windows (with --memmap also between validation and "
    "test windows).",
    "memmap": "Keep the values in a float32 memory-mapped file built once beside the data (or "
    "in $LSTMCAST_CACHE_DIR), for series larger than RAM.",
    "layers": "LSTM units per layer, e.g. 64,32 (default: the model's).",
    "dropout": "Dropout after each LSTM layer (default: the model's).",
    "activation": "LSTM activation; tanh runs fused everywhere (default: the model's).",
    "bidirectional": "Bidirectional LSTM layers (default: the model's).",
    "period": "Season length in rows for seasonal_naive, the model and the report's baseline "
    "(default: the frequency's season, e.g. 12 for monthly rows).",
    "model_options": "Other model options as key=value pairs, e.g. 'segment=12,hidden=256'.",
    "ensemble": "Train K members (seglstm, lstm, the presets) as one model; forecast their mean.",
    "ensemble_reduce": "How the ensemble's kept members make the forecast: their mean, or their "
    "median (robust to a member far off the others).",
    "epochs": "Training epochs (at most).",
    "batch_size": "Windows per batch.",
    "optimizer": "Optimizer.",
    "lr": "Learning rate.",
    "weight_decay": "Weight decay.",
    "loss": "Training loss.",
    "patience": "Early-stopping patience in epochs; 0 = off.",
    "clip_norm": "Gradient-norm clip; 0 = off (Keras).",
    "divergence_retries": "On divergence, restart from the best weights at a quarter of the "
    "learning rate, at most this often; 0 = stop at once.",
    "seed": "Random seed (a CPU run repeats bit for bit).",
    "device": "auto, cpu, cuda or cuda:N.",
    "cuda_graph": "Replay the training step as a CUDA graph on CUDA.",
    "amp": "bf16 autocast (CUDA).",
    "intervals": "Prediction-interval levels, e.g. 0.8,0.95 (default: none).",
    "interval_method": "How intervals are made: conformal (any model), quantile or cqr (a "
    "quantile head: lstm family, seglstm), mc-dropout (models with dropout), spread "
    "(conformal scaled by the members' spread; --ensemble K).",
    "quantiles": "The quantile head's levels, increasing, with 0.5 (default: those the "
    "intervals need).",
    "mc_samples": "Stochastic passes of mc-dropout.",
    "adaptive_gamma": "Adaptive conformal: each level moves with recent misses at this rate "
    "(e.g. 0.005; 0 = plain split-conformal).",
    "plot_step": "Horizon step the test-split plot draws.",
}
# `--help` groups the run options in these panels (the command's own options stay in "Options").
PANELS: dict[str, tuple[str, ...]] = {
    "Model": (
        "model", "lookback", "horizon", "layers", "dropout", "activation", "bidirectional",
        "period", "model_options", "ensemble", "ensemble_reduce",
    ),
    "Data and splits": (
        "targets", "time_col", "id_col", "transform", "fill", "duplicates", "scaler",
        "val_fraction", "test_fraction", "val_start", "test_start", "stride", "memmap",
    ),
    "Covariates and calendars": (
        "covariates", "future_covariates", "static", "id_embedding", "calendar", "holidays",
        "exchange", "macro", "release_lag",
    ),
    "Training": (
        "epochs", "batch_size", "optimizer", "lr", "weight_decay", "loss", "patience",
        "clip_norm", "divergence_retries", "seed", "device", "cuda_graph", "amp",
    ),
    "Intervals": ("intervals", "interval_method", "quantiles", "mc_samples", "adaptive_gamma"),
    "Report": ("market", "cost_bps", "plot_step"),
}  # fmt: skip
PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}
CHOICES: dict[str, type[StrEnum]] = {
    "model": choices.Model,
    "fill": choices.Fill,
    "duplicates": choices.Duplicates,
    "scaler": choices.ScalerKind,
    "activation": choices.Activation,
    "optimizer": choices.Optimizer,
    "loss": choices.Loss,
    "interval_method": choices.IntervalMethod,
    "ensemble_reduce": choices.EnsembleReduce,
}
SWITCHES = {  # bool fields: the on/off flag pair
    "bidirectional": "--bidirectional/--unidirectional",
    "cuda_graph": "--cuda-graph/--no-cuda-graph",
    "amp": "--amp/--no-amp",
    "market": "--market/--no-market",
    "memmap": "--memmap/--no-memmap",
}
# Not a RunConfig field: a shortcut for model_options' revin (the lstm family's per-window
# normalisation), which the README's recipes use.
REVIN = "revin"

_DEFAULTS = RunConfig()


def _shown_default(name: str, default: Any) -> str:
    if name == "lookback" and default is None:
        return "from the data's frequency and length"
    if default is None or default == () or default == {}:
        return ""
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default)


# None means "the model's" (or, for lookback, "chosen from the data")
_NUMBERS_WITHOUT_DEFAULT = {"dropout": float, "period": int, "lookback": int}


def _python_type(name: str) -> type:
    """What the flag parses: lists (layers, targets) and model_options arrive as text."""
    default = getattr(_DEFAULTS, name)
    if name in SWITCHES:
        return bool
    if name in _NUMBERS_WITHOUT_DEFAULT:
        return _NUMBERS_WITHOUT_DEFAULT[name]
    if isinstance(default, bool | int | float) and not isinstance(default, bool):
        return type(default)
    return str


def choice_metavar(allowed: Iterable[str]) -> str:
    return "[" + "|".join(allowed) + "]"


def _option(name: str, default: Any) -> Any:
    """The Typer option of field `name`; `default` is the value help shows."""
    help_text = HELP[name]
    shown = _shown_default(name, default)
    if shown:
        help_text += f" \\[default: {shown}]"
    flags = [SWITCHES[name]] if name in SWITCHES else ["--" + name.replace("_", "-")]
    extra: dict[str, Any] = {}
    if name in CHOICES:
        extra["metavar"] = choice_metavar(choices.values(CHOICES[name]))
    return Annotated[
        _python_type(name) | None,  # type: ignore[operator]
        typer.Option(
            *flags,
            help=help_text,
            show_default=False,
            rich_help_panel=PANEL_OF[name],
            **extra,
        ),
    ]


def parse_model_options(text: str) -> dict[str, Any]:
    """'segment=12,revin=true,revin_mode=mean' -> {"segment": 12, "revin": True, ...}: each
    value read as a TOML value (numbers, true/false, lists), else as a plain string."""
    options: dict[str, Any] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"The 'model_options' option takes key=value pairs separated by commas. "
                f"Got {text!r} instead."
            )
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        options[key.strip()] = value
    return options


def run_options(
    *, exclude: Iterable[str] = (), only: Iterable[str] | None = None, **shown: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the run options (every RunConfig field, or `only` those, less `exclude`) to a
    command. The command takes a keyword `run: dict[str, Any]` holding the options that were
    given (model_options parsed, --revin merged into it). `shown` overrides the default that
    help shows for a field (e.g. tune's model)."""
    names = [n for n in (only if only is not None else RunConfig.__dataclass_fields__) if n]
    names = [n for n in names if n not in set(exclude)]
    unknown = sorted(set(names) - FIELDS)
    if unknown:
        raise ValueError(f"not RunConfig fields: {unknown}")
    panel_order = list(PANELS)
    names.sort(key=lambda n: panel_order.index(PANEL_OF[n]))  # help's panel order
    with_revin = "model_options" in names

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "run"]
        added = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=_option(name, shown.get(name, getattr(_DEFAULTS, name))),
            )
            for name in names
        ]
        if with_revin:
            added.append(
                inspect.Parameter(
                    REVIN,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=None,
                    annotation=Annotated[
                        bool | None,
                        typer.Option(
                            "--revin/--no-revin",
                            help="lstm family: normalise each window by its own mean/std "
                            "(reversible); the same as --model-options revin=true. "
                            "\\[default: off]",
                            show_default=False,
                            rich_help_panel=PANEL_OF["model_options"],
                        ),
                    ],
                )
            )

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {n: kwargs.pop(n) for n in names if kwargs.get(n) is not None}
            for n in names:
                kwargs.pop(n, None)
            revin = kwargs.pop(REVIN, None) if with_revin else None
            if "model_options" in given:
                given["model_options"] = parse_model_options(given["model_options"])
            if revin is not None:
                given["model_options"] = {**given.get("model_options", {}), REVIN: revin}
            return command(*args, run=given, **kwargs)

        parameters = [*own, *added]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # typer must read the new signature, not the command's
        return wrapper

    return decorate


# Not a RunConfig field: how many processes train (a launch option, not part of the run, so
# a run's fingerprint, config.json and checkpoint do not depend on it).
Nproc = Annotated[
    int | None,
    typer.Option(
        "--nproc",
        help="Train one model on N processes of this machine with DistributedDataParallel "
        "(starts torchrun --standalone; gloo on the CPU, NCCL with one GPU each). Under "
        "torchrun, leave it out. \\[default: one process]",
        show_default=False,
    ),
]
