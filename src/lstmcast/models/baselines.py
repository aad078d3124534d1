"""Baselines with the models' contract: (B, L, F) window -> (B, H, T) forecast.

The first T columns of a window are the targets. RepeatLast, SeasonalNaive and Mean have no
parameters (the training loop skips them); LinearBaseline is trained like the LSTMs.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lstmcast.checks import check_int
from lstmcast.errors import ConfigError
from lstmcast.models.lstm import check_outputs


@dataclass(frozen=True)
class BaselineConfig:
    n_features: int  # F
    horizon: int = 1  # H
    n_targets: int | None = None  # T, None = F

    def __post_init__(self) -> None:
        object.__setattr__(  # resolve None -> F on the frozen instance
            self, "n_targets", check_outputs(self.n_features, self.horizon, self.n_targets)
        )


@dataclass(frozen=True)
class SeasonalNaiveConfig(BaselineConfig):
    period: int = 24  # season length in steps; must be <= the lookback

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("period", self.period)


@dataclass(frozen=True)
class LinearConfig:
    n_features: int  # F
    lookback: int  # L: the window length the layer is sized for
    horizon: int = 1  # H
    n_targets: int | None = None  # T, None = F
    context: int = 0  # C: known-in-advance inputs (B, C) beside the flattened window

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "n_targets", check_outputs(self.n_features, self.horizon, self.n_targets)
        )
        check_int("lookback", self.lookback)
        check_int("context", self.context, minimum=0)


def _n_targets(config: BaselineConfig | LinearConfig) -> int:
    return config.n_features if config.n_targets is None else config.n_targets


class RepeatLast(nn.Module):
    """Predict the last observed value of each target at every step."""

    name = "repeat_last"

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__()
        self.config = config
        self.horizon, self.n_targets = config.horizon, _n_targets(config)

    def forward(self, x: Tensor) -> Tensor:
        # B batch, L lookback, F features, H horizon, T targets
        last = x[:, -1:, : self.n_targets]  # (B, 1, T)
        return last.repeat(1, self.horizon, 1)  # (B, H, T)


class SeasonalNaive(nn.Module):
    """Step h predicts the value one season earlier: x[:, L - period + (h % period), :T]."""

    name = "seasonal_naive"

    def __init__(self, config: SeasonalNaiveConfig) -> None:
        super().__init__()
        self.config = config
        self.horizon, self.n_targets = config.horizon, _n_targets(config)
        self.period = config.period

    def forward(self, x: Tensor) -> Tensor:
        # B batch, L lookback, F features, H horizon, T targets
        L = x.shape[1]
        if self.period > L:
            raise ConfigError(
                f"The 'period' parameter ({self.period}) must be <= the lookback ({L})."
            )
        steps = L - self.period + torch.arange(self.horizon, device=x.device) % self.period  # (H,)
        return x[:, steps, : self.n_targets]  # (B, H, T)


class Mean(nn.Module):
    """Predict a fixed mean per target (the training mean, set with `set_train_mean`)."""

    name = "mean"

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__()
        self.config = config
        self.horizon, self.n_targets = config.horizon, _n_targets(config)
        self.mean: Tensor
        self.register_buffer("mean", torch.zeros(self.n_targets))  # (T,), saved with the weights

    @torch.no_grad()
    def set_train_mean(self, mean: Tensor) -> None:
        value = torch.as_tensor(mean, dtype=self.mean.dtype)
        if value.shape != self.mean.shape:
            raise ConfigError(
                f"The 'mean' parameter must have shape ({self.n_targets},). "
                f"Got {tuple(value.shape)} instead."
            )
        self.mean.copy_(value)

    def forward(self, x: Tensor) -> Tensor:
        # B batch, H horizon, T targets
        mean = self.mean.to(dtype=x.dtype)  # (T,)
        return mean.expand(x.shape[0], self.horizon, -1).clone()  # (B, H, T)


class LinearBaseline(nn.Module):
    """One linear layer from the flattened window (L*F) to the forecast (H*T)."""

    name = "linear"

    def __init__(self, config: LinearConfig) -> None:
        super().__init__()
        self.config = config
        self.lookback, self.horizon = config.lookback, config.horizon
        self.n_targets = _n_targets(config)
        width = config.lookback * config.n_features + config.context
        self.linear = nn.Linear(width, self.horizon * self.n_targets)
        nn.init.xavier_uniform_(self.linear.weight)  # Keras Dense: glorot_uniform kernel
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        # B batch, L lookback, F features, H horizon, T targets, C context
        B, L, F = x.shape
        if self.lookback != L:
            raise ConfigError(
                f"The 'lookback' parameter ({self.lookback}) must equal the window length ({L})."
            )
        flat = x.reshape(B, L * F)  # time-major flatten like Keras Flatten
        if context is not None:
            flat = torch.cat([flat, context], dim=1)  # (B, L*F + C)
        y = self.linear(flat)  # (B, H*T)
        return y.view(B, self.horizon, self.n_targets)  # (B, H, T)
