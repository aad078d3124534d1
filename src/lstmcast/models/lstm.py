"""LSTM forecaster: a stack of Keras-equivalent LSTM layers and a dense head.

The three reference Keras models are presets of this one module (see PRESETS); with Keras's
initialisation, equations and trainable parameter counts they are the same networks.

With `quantiles` (e.g. (0.1, 0.5, 0.9)) the dense head also predicts a quantile band and the
forecast is (B, H, T, Q); the model then is no longer the Keras one (see `quantile_outputs`).
"""

import itertools
import numbers
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmcast import choices
from lstmcast.checks import check_bool, check_choice, check_int
from lstmcast.errors import ConfigError
from lstmcast.kernels import dispatch
from lstmcast.kernels.cpu_lstm import Dropout
from lstmcast.kernels.dispatch import Backend
from lstmcast.models.keras_lstm import ACTIVATIONS, KerasLSTM

MAX_MEMBERS = 64  # an ensemble's K at most
# An ensemble's members run in one pass of the C++ layer while the arrays that pass keeps for
# the backward (per layer, row, step and direction: the gates and the cell and hidden states,
# 6 x units floats) stay under this many floats, 640 MB: within the layer's 1 GB cache of
# blocks (cpu_lstm.cpp). Above it (stacked or bidirectional at batch 1024, lookback 96, K 5)
# the one pass was 1.34-1.42x slower than member after member; at batch 32 1.3-1.9x faster,
# and in between the two tied (docs/performance.md).
AT_ONCE_FLOATS = 160 * 2**20

# Reference Keras models, as overrides of LSTMConfig's defaults.
PRESETS: dict[str, dict[str, Any]] = {
    # LSTM(50, relu) -> Dense(F)
    "simple": dict(layers=(50,), activation="relu"),
    # LSTM(64, relu, return_sequences) -> Dropout(0.2) -> LSTM(32, relu) -> Dropout(0.2) -> Dense(F)
    "stacked": dict(layers=(64, 32), dropout=0.2, activation="relu"),
    # Bidirectional(LSTM(50, relu), merge_mode="concat") -> Dense(F)
    "bidirectional": dict(layers=(50,), bidirectional=True, activation="relu"),
}


def check_dropout(value: object) -> float:
    """Raise ConfigError unless `value` is a number in [0, 1); return it as a float."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not 0 <= value < 1:  # type: ignore[operator]
        raise ConfigError(
            f"The 'dropout' parameter must be a float in [0, 1). Got {value!r} instead."
        )
    return float(value)  # type: ignore[arg-type]


def check_outputs(n_features: object, horizon: object, n_targets: object) -> int:
    """Validate the fields every model config shares; return n_targets (None = n_features)."""
    check_int("n_features", n_features)
    check_int("horizon", horizon)
    if n_targets is None:
        return n_features  # type: ignore[return-value]  # checked to be an int above
    if (
        isinstance(n_targets, bool)
        or not isinstance(n_targets, int)
        or not 1 <= n_targets <= n_features  # type: ignore[operator]
    ):
        raise ConfigError(
            f"The 'n_targets' parameter must be an int in [1, n_features={n_features}]. "
            f"Got {n_targets!r} instead."
        )
    return n_targets


def check_quantiles(value: object) -> tuple[float, ...]:
    """Raise ConfigError unless `value` is () or strictly increasing levels in (0, 1) that
    include 0.5 (the point forecast); return them as a tuple of floats."""
    if not isinstance(value, tuple | list) or any(
        isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0 < q < 1  # type: ignore[operator]
        for q in value
    ):
        raise ConfigError(
            "The 'quantiles' parameter must be a tuple of levels in (0, 1), e.g. (0.1, 0.5, 0.9). "
            f"Got {value!r} instead."
        )
    taus = tuple(float(q) for q in value)  # type: ignore[arg-type]  # checked to be Real above
    if any(b <= a for a, b in itertools.pairwise(taus)):
        raise ConfigError(
            "The 'quantiles' parameter must be strictly increasing, without repeats. "
            f"Got {value!r} instead."
        )
    if taus and 0.5 not in taus:
        raise ConfigError(
            "The 'quantiles' parameter must include 0.5 (the point forecast). "
            f"Got {value!r} instead."
        )
    return taus


def check_members(members: object, quantiles: tuple[float, ...], reduce: object) -> None:
    """Raise ConfigError unless `members` (an ensemble's K) is an int in [1, MAX_MEMBERS] and,
    above 1, the model has no quantile head (an ensemble's intervals are conformal), and
    `reduce` (how the kept members make the forecast) is one of EnsembleReduce's."""
    check_choice("reduce", reduce, choices.values(choices.EnsembleReduce))
    check_int("members", members)
    if members > MAX_MEMBERS:  # type: ignore[operator]  # checked to be an int above
        raise ConfigError(f"The 'members' parameter must be at most {MAX_MEMBERS}. Got {members}.")
    if members > 1 and quantiles:  # type: ignore[operator]
        raise ConfigError(
            "An ensemble (members > 1) gives point forecasts; its intervals come from "
            "--interval-method conformal, not a quantile head"
        )


def dense(layer: nn.Linear, x: Tensor) -> Tensor:
    """layer(x). With a leading member axis on its weight (K, out, in) and bias (K, out), x
    holds K members' rows stacked member-major and member k's rows meet member k's weights
    (an ensemble run at once, models.ensemble)."""
    weight, bias = layer.weight, layer.bias
    if weight.dim() == 2:
        return F.linear(x, weight, bias)
    K = weight.shape[0]
    rows = x.reshape(K, -1, x.shape[-1])  # (K, B, in)
    return torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2)).flatten(0, 1)


def spread_bias(quantiles: tuple[float, ...]) -> Tensor:
    """(Q-1,) initial spread outputs: softplus of them gives the gaps between consecutive
    quantiles of a standard normal, the band of the standardised data the models see."""
    z = torch.special.ndtri(torch.tensor(quantiles, dtype=torch.float64))
    gaps = z.diff()  # > 0: the levels increase
    return (gaps + torch.log(-torch.expm1(-gaps))).float()  # softplus's inverse


def quantile_outputs(median: Tensor, spread: Tensor, quantiles: tuple[float, ...]) -> Tensor:
    """Median (...) and raw spread outputs (..., Q-1) -> quantiles (..., Q), never crossing.

    spread[..., k] is the gap between levels k and k+1 before a softplus. The median is kept
    as it is and the other quantiles are the median minus (below) or plus (above) cumulative
    sums of the gaps, outward from 0.5. Because every gap is >= 0 (and rounding is
    monotone), the quantiles are non-decreasing by construction, in float arithmetic too, with
    no sort (a sort would swap the levels' gradients). Outward from the median rather than up
    from the lowest level, so the median is exactly the point model's output and trains like it;
    the spreads only widen the band around it.
    """
    m = quantiles.index(0.5)
    gaps = F.softplus(spread)  # (..., Q-1), >= 0
    below = gaps[..., :m].flip(-1).cumsum(-1).flip(-1)  # (..., m): level k is sum of gaps k..m-1
    above = gaps[..., m:].cumsum(-1)  # (..., Q-1-m)
    center = median[..., None]
    return torch.cat([center - below, center, center + above], dim=-1)  # (..., Q)


@dataclass(frozen=True)
class LSTMConfig:
    n_features: int  # F: input variables per time step (targets first, then covariates)
    horizon: int = 1  # H: steps predicted at once
    n_targets: int | None = None  # T: predicted variables, the first T columns; None = F
    layers: tuple[int, ...] = (50,)  # units of each LSTM layer, bottom to top
    bidirectional: bool = False  # Keras Bidirectional(merge_mode="concat") around each layer
    dropout: float = 0.0  # Dropout after each LSTM layer (0 = none)
    activation: str = "tanh"  # Keras LSTM activation; "tanh" uses torch's fused kernel
    revin: bool = False  # normalise each window by its own mean/std, undo it on the output
    quantiles: tuple[float, ...] = ()  # Q quantile levels (with 0.5): forecast (B, H, T, Q)
    context: int = 0  # C: known-in-advance inputs (B, C) the head reads beside the LSTM state
    members: int = 1  # K > 1: an ensemble of K members trained as one (models.ensemble)
    reduce: str = "mean"  # the ensemble's forecast: its kept members' mean or median

    def __post_init__(self) -> None:
        # object.__setattr__: normalise fields of the frozen instance (None -> int, list -> tuple)
        object.__setattr__(
            self, "n_targets", check_outputs(self.n_features, self.horizon, self.n_targets)
        )
        layers = self.layers
        if (
            not isinstance(layers, tuple | list)
            or not layers
            or any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in layers)
        ):
            raise ConfigError(
                "The 'layers' parameter must be a non-empty tuple of ints >= 1. "
                f"Got {layers!r} instead."
            )
        object.__setattr__(self, "layers", tuple(layers))
        check_bool("bidirectional", self.bidirectional)
        object.__setattr__(self, "dropout", check_dropout(self.dropout))
        check_bool("revin", self.revin)
        check_choice("activation", self.activation, sorted(ACTIVATIONS))
        object.__setattr__(self, "quantiles", check_quantiles(self.quantiles))
        check_int("context", self.context, minimum=0)
        check_members(self.members, self.quantiles, self.reduce)


class LSTMForecaster(nn.Module):
    """(B, L, F) window -> (B, H, T) forecast of the first T variables; (B, H, T, Q) with
    Q = len(config.quantiles) quantile levels. With `context` C > 0 the dense head reads the
    top LSTM state and a (B, C) vector of inputs known in advance (covariates over the horizon,
    static covariates, embeddings; see lstmcast.models.covariates); with C = 0 it is the
    Keras model."""

    name = "lstm"  # registry name; build() sets the preset's name on the instance

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.horizon = config.horizon
        self.n_targets = config.n_features if config.n_targets is None else config.n_targets
        D = 2 if config.bidirectional else 1
        sizes = (config.n_features, *(units * D for units in config.layers))
        last = len(config.layers) - 1
        self.layers = nn.ModuleList(
            KerasLSTM(
                sizes[k],
                units,
                activation=config.activation,
                bidirectional=config.bidirectional,
                return_sequences=k < last,  # all but the top layer feed whole sequences up
            )
            for k, units in enumerate(config.layers)
        )
        self.dropout = Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        width = sizes[-1] + config.context  # the head's input: top state, then the context
        self.head = nn.Linear(width, config.horizon * self.n_targets)
        nn.init.xavier_uniform_(self.head.weight)  # Keras Dense: glorot_uniform kernel
        nn.init.zeros_(self.head.bias)  # and zero bias
        self.quantiles: tuple[float, ...] = config.quantiles
        if len(self.quantiles) > 1:
            # The widened head: `head` stays the point model's Dense (same weights drawn in the
            # same order, so the median starts as the point model's output) and `spread` adds
            # the Q-1 gaps per (step, target): together one Dense(H*T*Q).
            self.spread = nn.Linear(
                width, config.horizon * self.n_targets * (len(self.quantiles) - 1)
            )
            nn.init.xavier_uniform_(self.spread.weight)
            with torch.no_grad():
                self.spread.bias.copy_(
                    spread_bias(self.quantiles).repeat(config.horizon * self.n_targets)
                )

    def runs_members_at_once(self, x: Tensor, members: int) -> bool:
        """Whether an ensemble of this structure runs its `members` in one pass on x (B, L, F):
        every layer on the C++ layer, whose weights may carry a member axis (with x's rows
        stacked member-major), no quantile head (ensembles have none), and the pass's saved
        arrays under AT_ONCE_FLOATS."""
        B, L = x.shape[0], x.shape[1]
        layers: list[KerasLSTM] = list(self.layers)  # type: ignore[arg-type]
        saved = sum(members * B * L * layer.num_directions * 6 * layer.units for layer in layers)
        return (
            not self.quantiles
            and saved <= AT_ONCE_FLOATS
            and all(
                dispatch.backend(layer.activation, x.device, x.dtype, layer.units, layer.fused)
                is Backend.cpp
                for layer in layers
            )
        )

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        # B batch, L lookback, F features, U units, D directions, H horizon, T targets,
        # C context
        B, T = x.shape[0], self.n_targets
        if self.config.revin:  # reversible instance normalisation, no parameters
            mean = x.mean(dim=1, keepdim=True)  # (B, 1, F)
            std = x.std(dim=1, keepdim=True, unbiased=False) + 1e-5  # (B, 1, F)
            x = (x - mean) / std
        for layer in self.layers:
            x = self.dropout(layer(x))  # (B, L, U*D) below the top layer, (B, U*D) at the top
        if context is not None:
            x = torch.cat([x, context], dim=1)  # (B, U*D + C)
        y = dense(self.head, x).view(B, self.horizon, T)  # (B, H, T)
        if self.quantiles:
            spread = (  # (B, H, T, Q-1)
                self.spread(x).view(B, self.horizon, T, -1)
                if len(self.quantiles) > 1
                else y.new_zeros(B, self.horizon, T, 0)  # the median alone
            )
            y = quantile_outputs(y, spread, self.quantiles)  # (B, H, T, Q)
            if self.config.revin:  # the same positive scale on every level keeps their order
                y = y * std[..., :T, None] + mean[..., :T, None]
            return y
        if self.config.revin:
            y = y * std[..., :T] + mean[..., :T]
        return y
