"""Model registry: build a model by name, describe it as JSON, rebuild it from that JSON.

Every model maps a window x (B, L, F) to a forecast (B, H, T) of the first T columns and has
`.config`, a frozen dataclass. `config_dict(model)` is that config plus the model's registry name
under "name"; `from_config_dict` rebuilds the same architecture (weights are loaded separately).
The models with a quantile head (`supports_quantiles`) forecast (B, H, T, Q) when built with
`quantiles` (Q levels, increasing, 0.5 among them).
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmcast.config import RunConfig
from lstmcast.errors import ConfigError, ModelFileError
from lstmcast.models.baselines import (
    BaselineConfig,
    LinearBaseline,
    LinearConfig,
    Mean,
    RepeatLast,
    SeasonalNaive,
    SeasonalNaiveConfig,
)
from lstmcast.models.covariates import CovariateSpec, WithCovariates, embedding_width
from lstmcast.models.ensemble import Ensemble, StackedEnsemble
from lstmcast.models.keras_lstm import ACTIVATIONS, KerasLSTM
from lstmcast.models.lstm import PRESETS, LSTMConfig, LSTMForecaster
from lstmcast.models.seglstm import SegLSTM, SegLSTMConfig
from lstmcast.models.seglstm_ensemble import SegLSTMEnsemble

__all__ = [
    "ACTIVATIONS",
    "MODELS",
    "PRESETS",
    "BaselineConfig",
    "CovariateSpec",
    "KerasLSTM",
    "LSTMConfig",
    "LSTMForecaster",
    "LinearBaseline",
    "LinearConfig",
    "Mean",
    "RepeatLast",
    "SeasonalNaive",
    "SeasonalNaiveConfig",
    "SegLSTM",
    "SegLSTMConfig",
    "WithCovariates",
    "build",
    "build_for_run",
    "config_dict",
    "core",
    "embedding_width",
    "ensemble_of",
    "from_config_dict",
    "is_trainable",
    "supports_quantiles",
]

MODELS: dict[str, str] = {
    "lstm": "LSTM stack + dense head; set layers, bidirectional, dropout, activation.",
    "simple": "Reference Keras model: LSTM(50, relu) -> Dense.",
    "stacked": "Reference Keras model: LSTM(64, relu) -> Dropout(0.2) -> LSTM(32, relu) "
    "-> Dropout(0.2) -> Dense.",
    "bidirectional": "Reference Keras model: Bidirectional(LSTM(50, relu)) -> Dense.",
    "repeat_last": "Baseline: repeat the last observed value of each target.",
    "seasonal_naive": "Baseline: repeat the values one season back (--period, else the "
    "frequency's season, else 24 steps).",
    "mean": "Baseline: predict the training mean of each target.",
    "linear": "Baseline: one linear layer from the flattened window to the forecast.",
    "seglstm": "Strong LSTM: per-variable segments, instance norm, parallel decoding (SegRNN).",
}


def seglstm_family(config: SegLSTMConfig) -> nn.Module:
    """One SegLSTM, or an ensemble of `config.members` trained as one model. (Not named
    `seglstm`: that would shadow the submodule `lstmcast.models.seglstm`.)"""
    return SegLSTMEnsemble(config) if config.members > 1 else SegLSTM(config)


def lstm_family(config: LSTMConfig) -> nn.Module:
    """One LSTMForecaster (lstm and the presets), or an ensemble of `config.members` trained
    as one model."""
    return StackedEnsemble(config, LSTMForecaster) if config.members > 1 else LSTMForecaster(config)


# name -> (config dataclass, module class (or factory) taking that config)
_REGISTRY: dict[str, tuple[type, Callable[[Any], nn.Module]]] = {
    "lstm": (LSTMConfig, lstm_family),
    "simple": (LSTMConfig, lstm_family),
    "stacked": (LSTMConfig, lstm_family),
    "bidirectional": (LSTMConfig, lstm_family),
    "repeat_last": (BaselineConfig, RepeatLast),
    "seasonal_naive": (SeasonalNaiveConfig, SeasonalNaive),
    "mean": (BaselineConfig, Mean),
    "linear": (LinearConfig, LinearBaseline),
    "seglstm": (SegLSTMConfig, seglstm_family),
}
# The models `--ensemble K` trains as one model of K members (their configs have `members`).
ENSEMBLE_MODELS = tuple(
    name
    for name, (config_cls, _) in _REGISTRY.items()
    if "members" in {f.name for f in dataclasses.fields(config_cls)}
)
# Fields build() takes as its own arguments rather than as overrides; `quantiles` is one: it
# shapes the output (B, H, T, Q) as horizon and n_targets do.
_SHAPE_FIELDS = ("n_features", "horizon", "n_targets", "lookback", "quantiles", "context")


def supports_quantiles(name: str) -> bool:
    """True if model `name` has a quantile head (its config has a `quantiles` field)."""
    return name in _REGISTRY and "quantiles" in {
        f.name for f in dataclasses.fields(_REGISTRY[name][0])
    }


def build(
    name: str,
    n_features: int,
    horizon: int = 1,
    n_targets: int | None = None,
    lookback: int | None = None,
    quantiles: Any = (),
    context: int = 0,
    **overrides: Any,
) -> nn.Module:
    """Build model `name` for windows (B, L=lookback, F=n_features) -> (B, H=horizon, T=n_targets).

    `overrides` set other config fields (presets accept them too: `build("simple", 7,
    activation="tanh")`). `lookback` is needed by "linear" and "seglstm" and checked against
    "seasonal_naive"'s
    period; other models ignore it. `quantiles` (Q increasing levels with 0.5, e.g. (0.1, 0.5,
    0.9)) gives the models that `supports_quantiles` a quantile head: (B, H, T, Q); the others
    reject it. Weights are drawn from torch's global RNG.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"Unknown model {name!r}. Choose one of: {', '.join(MODELS)}.")
    config_cls, model_cls = _REGISTRY[name]
    fields = [f.name for f in dataclasses.fields(config_cls)]
    allowed = [f for f in fields if f not in _SHAPE_FIELDS]
    no_quantiles = quantiles is None or (isinstance(quantiles, tuple | list) and not quantiles)
    head = [] if no_quantiles or "quantiles" in fields else ["quantiles"]  # rejected below
    for key in [*overrides, *head]:
        if key not in allowed:
            raise ConfigError(
                f"Unknown parameter {key!r} for model {name!r}. "
                f"Allowed: {', '.join(allowed) if allowed else 'none'}."
            )
    shape: dict[str, Any] = dict(n_features=n_features, horizon=horizon, n_targets=n_targets)
    if "lookback" in fields:
        shape["lookback"] = lookback
    if "quantiles" in fields:
        shape["quantiles"] = () if quantiles is None else quantiles
    if "context" in fields:
        shape["context"] = context
    config = config_cls(**shape, **{**PRESETS.get(name, {}), **overrides})
    period = getattr(config, "period", None)
    if isinstance(period, int) and lookback is not None and period > lookback:
        raise ConfigError(
            f"The 'period' parameter ({period}) must be <= the lookback ({lookback})."
        )
    model = model_cls(config)
    model.name = name  # type: ignore[assignment]  # nn.Module types attributes as Tensor | Module
    return model


def config_dict(model: nn.Module) -> dict[str, Any]:
    """JSON-safe description of `model`'s architecture: {"name": ..., **config fields}."""
    config = getattr(model, "config", None)
    name = getattr(model, "name", None)
    if not dataclasses.is_dataclass(config) or isinstance(config, type) or name not in _REGISTRY:
        raise ConfigError(
            f"The model must be one built by lstmcast.models.build. Got {type(model).__name__}."
        )
    out: dict[str, Any] = {"name": name}
    for key, value in dataclasses.asdict(config).items():
        if (
            (key in ("quantiles", "context") and not value)
            or (key == "members" and value == 1)
            or (key == "reduce" and value == "mean")
        ):
            continue  # a point model without covariates is described as before they existed
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def from_config_dict(d: Any) -> nn.Module:
    """Rebuild the architecture `config_dict` described; raise ModelFileError if malformed."""
    if not isinstance(d, dict):
        raise ModelFileError(f"The model config must be a JSON object. Got {type(d).__name__}.")
    fields = dict(d)
    name = fields.pop("name", None)
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ModelFileError(
            f"The model config names an unknown model {name!r}. Known: {', '.join(MODELS)}."
        )
    config_cls, model_cls = _REGISTRY[name]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ModelFileError(
            f"The model config for {name!r} has unknown fields {unknown}. "
            f"Allowed: {', '.join(sorted(known))}."
        )
    for key in ("layers", "quantiles"):  # JSON lists back to the configs' tuples
        if isinstance(fields.get(key), list):
            fields[key] = tuple(fields[key])
    try:
        config = config_cls(**fields)
    except (ConfigError, TypeError) as err:
        raise ModelFileError(f"The model config for {name!r} is invalid: {err}") from err
    model = model_cls(config)
    model.name = name  # type: ignore[assignment]
    return model


def is_trainable(model: nn.Module) -> bool:
    """True if the model has parameters to train (the training loop skips the others)."""
    return any(p.requires_grad for p in model.parameters())


def core(model: nn.Module) -> nn.Module:
    """The model itself, inside its covariate wrapper if it has one."""
    return model.core if isinstance(model, WithCovariates) else model


def ensemble_of(model: nn.Module) -> Ensemble | None:
    """The ensemble trained as one model inside `model` (`config.members` K > 1), else None."""
    inner = core(model)
    return inner if isinstance(inner, Ensemble) else None


def build_for_run(
    config: RunConfig,
    n_features: int,
    n_targets: int,
    *,
    seeded: bool = True,
    covariates: CovariateSpec | None = None,
) -> nn.Module:
    """The model of a run: `config.model` with its lookback, horizon and overrides; wrapped
    in `WithCovariates` when the run has inputs known in advance (`covariates`).

    `seeded` first seeds torch's and NumPy's global RNGs with `config.seed`, so the initial
    weights repeat (CPU bit for bit).
    """
    if config.model == "seglstm" and config.covariates:
        raise ConfigError(
            "seglstm forecasts each target from its own past (channel-independent) and cannot "
            f"use past covariates ({', '.join(config.covariates)}); use --model lstm, or pass "
            "values known in advance as --future-covariates"
        )
    if config.ensemble > 1 and config.model not in ENSEMBLE_MODELS:
        raise ConfigError(
            f"--ensemble trains members of {', '.join(ENSEMBLE_MODELS)} as one model; "
            f"model '{config.model}' is trained alone (use one of those, or --ensemble 1)"
        )
    if config.ensemble > 1 and config.intervals and config.interval_method == "mc-dropout":
        raise ConfigError(
            "--ensemble with --interval-method mc-dropout is not supported; use conformal, "
            "calibrated on the ensemble's mean"
        )
    if seeded:
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
    context = covariates.size if covariates is not None else 0
    fields = (
        {f.name for f in dataclasses.fields(_REGISTRY[config.model][0])}
        if (config.model in _REGISTRY)
        else set()
    )
    model = build(
        config.model,
        n_features=n_features,
        horizon=config.horizon,
        n_targets=n_targets,
        lookback=config.lookback,
        context=context if "context" in fields else 0,
        **config.model_overrides(),
    )
    if covariates is None:
        return model
    return WithCovariates(model, covariates)
