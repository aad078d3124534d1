"""Every enumerated option, once. The CLI lists them in `--help` (Typer takes the Enums);
the library validates against `values(...)` of the same Enum.

The sets that belong to a lower layer's implementation are checked against it by the tests
(model names against the registry, activations against the kernels' table)."""

from __future__ import annotations

from enum import StrEnum


class Fill(StrEnum):
    error = "error"
    ffill = "ffill"
    interpolate = "interpolate"


class Duplicates(StrEnum):
    """What to do with rows that repeat a timestamp (of one series)."""

    error = "error"
    first = "first"
    last = "last"
    mean = "mean"


class ScalerKind(StrEnum):
    standard = "standard"
    minmax = "minmax"
    robust = "robust"
    none = "none"


class Optimizer(StrEnum):
    adam = "adam"
    adamw = "adamw"
    rmsprop = "rmsprop"
    sgd = "sgd"


class Loss(StrEnum):
    mse = "mse"
    mae = "mae"
    huber = "huber"


class Activation(StrEnum):
    """Keras's activation names (the candidate and cell activation of an LSTM layer)."""

    tanh = "tanh"
    relu = "relu"
    sigmoid = "sigmoid"
    hard_sigmoid = "hard_sigmoid"
    elu = "elu"
    selu = "selu"
    gelu = "gelu"
    silu = "silu"
    swish = "swish"
    softsign = "softsign"
    softplus = "softplus"
    linear = "linear"


class Model(StrEnum):
    lstm = "lstm"
    simple = "simple"
    stacked = "stacked"
    bidirectional = "bidirectional"
    repeat_last = "repeat_last"
    seasonal_naive = "seasonal_naive"
    mean = "mean"
    linear = "linear"
    seglstm = "seglstm"


class IntervalMethod(StrEnum):
    """How prediction intervals are made (see lstmcast.workflows.calibration)."""

    conformal = "conformal"  # split-conformal on the validation residuals, any model
    quantile = "quantile"  # a quantile head trained with the pinball loss
    cqr = "cqr"  # the quantile head, conformalised on validation
    mc_dropout = "mc-dropout"  # stochastic passes with dropout on
    spread = "spread"  # conformal on residuals over an ensemble's member spread


class EnsembleReduce(StrEnum):
    """How an ensemble's kept members make its forecast."""

    mean = "mean"
    median = "median"  # robust to a member far off the others


class Part(StrEnum):
    """The part of a table a saved model is evaluated on."""

    train = "train"
    val = "val"
    test = "test"
    all = "all"


class Pruner(StrEnum):
    median = "median"
    hyperband = "hyperband"


class Window(StrEnum):
    """How a backtest's training window moves through time."""

    expanding = "expanding"
    sliding = "sliding"


class Protocol(StrEnum):
    ett_hourly = "ett-hourly"
    ett_minute = "ett-minute"
    ratio = "ratio"


class Transform(StrEnum):
    """What a target is trained as; forecasts are rebuilt to its level (see data.transform)."""

    none = "none"
    diff = "diff"
    log = "log"
    returns = "returns"
    log_returns = "log-returns"


def values(choices: type[StrEnum]) -> tuple[str, ...]:
    """The allowed values of `choices` as plain strings, in declaration order."""
    return tuple(member.value for member in choices)
