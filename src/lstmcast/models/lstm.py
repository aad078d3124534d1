"""LSTM forecaster: a stack of Keras-equivalent LSTM layers and a dense head.

The three reference Keras models are presets of this one module (see PRESETS); with Keras's
initialisation, equations and trainable parameter counts they are the same networks.
"""

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from lstmcast.checks import check_bool, check_choice, check_int
from lstmcast.errors import ConfigError
from lstmcast.kernels.cpu_lstm import Dropout
from lstmcast.models.keras_lstm import ACTIVATIONS, KerasLSTM

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


class LSTMForecaster(nn.Module):
    """(B, L, F) window -> (B, H, T) forecast of the first T variables."""

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
        self.head = nn.Linear(sizes[-1], config.horizon * self.n_targets)
        nn.init.xavier_uniform_(self.head.weight)  # Keras Dense: glorot_uniform kernel
        nn.init.zeros_(self.head.bias)  # and zero bias

    def forward(self, x: Tensor) -> Tensor:
        # B batch, L lookback, F features, U units, D directions, H horizon, T targets
        B, T = x.shape[0], self.n_targets
        if self.config.revin:  # reversible instance normalisation, no parameters
            mean = x.mean(dim=1, keepdim=True)  # (B, 1, F)
            std = x.std(dim=1, keepdim=True, unbiased=False) + 1e-5  # (B, 1, F)
            x = (x - mean) / std
        for layer in self.layers:
            x = self.dropout(layer(x))  # (B, L, U*D) below the top layer, (B, U*D) at the top
        y = self.head(x).view(B, self.horizon, T)  # (B, H, T)
        if self.config.revin:
            y = y * std[..., :T] + mean[..., :T]
        return y
