"""SegLSTM: a one-layer LSTM over segments of each variable, decoding all output segments at once.

The ingredients that make a recurrent model competitive on long-horizon benchmarks (SegRNN,
Lin et al. 2023, with an LSTM cell):
- reversible instance normalisation: each window is shifted by its last value (or centred and
  scaled by its own mean/std) per variable, and the forecast is shifted back;
- channel independence: one shared LSTM reads every variable on its own, (B, L, V) -> (B*V, ...);
- segment-wise input: the lookback is cut into N segments of S steps, each embedded by
  Linear(S, D) + ReLU, so the LSTM takes N steps instead of L;
- parallel multi-step decoding: the final (h, c) is repeated for each of the M output segments,
  whose decoder input is a learned position embedding beside a learned channel embedding; one
  LSTM step per output segment, all in parallel, then Dropout + Linear(D, S).

With `quantiles` (Q levels, 0.5 among them) the output layer also predicts Q-1 gaps per step,
turned into quantiles that never cross around the median (`lstm.quantile_outputs`): the
forecast is (B, H, T, Q), RevIN undone on every level.

A lookback that is not a multiple of S is padded on the left by repeating the first value;
a horizon that is not a multiple of S is decoded as ceil(H/S) segments and cropped.
Because variables never mix, covariates cannot inform the targets: only the first T columns
are encoded (the same forecasts as predicting every channel and keeping the first T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmcast.checks import check_bool, check_choice, check_int
from lstmcast.errors import ConfigError
from lstmcast.kernels.cpu_lstm import Dropout
from lstmcast.models.lstm import (
    check_dropout,
    check_members,
    check_outputs,
    check_quantiles,
    quantile_outputs,
    spread_bias,
)

REVIN_MODES = ("last", "mean")


@dataclass(frozen=True)
class SegLSTMConfig:
    n_features: int  # F: input variables (targets first, then covariates)
    lookback: int  # L: window length
    horizon: int = 1  # H: steps predicted at once
    n_targets: int | None = None  # T: predicted variables, the first T columns; None = F
    segment: int = 24  # S: steps per segment (input and output)
    hidden: int = 512  # D: LSTM width (and embedding width)
    dropout: float = 0.5  # before the output layer
    revin: bool = True  # reversible instance normalisation per window and variable
    revin_mode: str = "last"  # "last": subtract the last value; "mean": mean/std
    quantiles: tuple[float, ...] = ()  # Q quantile levels (with 0.5): forecast (B, H, T, Q)
    context: int = 0  # C: known-in-advance inputs (B, C), added to every decoder query
    members: int = 1  # K > 1: an ensemble of K members trained as one (seglstm_ensemble)
    reduce: str = "mean"  # the ensemble's forecast: its kept members' mean or median

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "n_targets", check_outputs(self.n_features, self.horizon, self.n_targets)
        )
        for name in ("lookback", "segment"):
            check_int(name, getattr(self, name))
        check_int("hidden", self.hidden, minimum=2)
        object.__setattr__(self, "dropout", check_dropout(self.dropout))
        check_bool("revin", self.revin)
        check_choice("revin_mode", self.revin_mode, REVIN_MODES)
        object.__setattr__(self, "quantiles", check_quantiles(self.quantiles))
        check_int("context", self.context, minimum=0)
        check_members(self.members, self.quantiles, self.reduce)


class SegLSTM(nn.Module):
    """(B, L, F) window -> (B, H, T) forecast of the first T variables; (B, H, T, Q) with
    Q = len(config.quantiles) quantile levels."""

    name = "seglstm"

    def __init__(self, config: SegLSTMConfig) -> None:
        super().__init__()
        self.config = config
        S, D = config.segment, config.hidden
        self.n_targets: int = config.n_features if config.n_targets is None else config.n_targets
        self.n_in = math.ceil(config.lookback / S)  # N input segments
        self.n_out = math.ceil(config.horizon / S)  # M output segments
        self.embed = nn.Sequential(nn.Linear(S, D), nn.ReLU())
        self.lstm = nn.LSTM(D, D, batch_first=True)  # shared by encoder and decoder
        self.position = nn.Parameter(torch.randn(self.n_out, D - D // 2))  # (M, D - D/2)
        self.channel = nn.Parameter(torch.randn(self.n_targets, D // 2))  # (T, D/2)
        self.head = nn.Sequential(Dropout(config.dropout), nn.Linear(D, S))
        # known-in-advance inputs join every decoder query (after the SegRNN parameters, so
        # those are drawn as before)
        self.context = nn.Linear(config.context, D) if config.context else None
        self.quantiles: tuple[float, ...] = config.quantiles
        if len(self.quantiles) > 1:
            # With the point model's Linear(D, S) (drawn first, so the median starts as the point
            # model's output), one Linear(D, S*(Q-1)) for the gaps: together Linear(D, S*Q).
            q = len(self.quantiles) - 1
            self.spread = nn.Linear(D, S * q)
            with torch.no_grad():
                self.spread.bias.copy_(spread_bias(self.quantiles).repeat(S))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.config.lookback != x.shape[1]:
            raise ConfigError(
                f"The 'lookback' parameter ({self.config.lookback}) must equal the window "
                f"length ({x.shape[1]})."
            )
        h_out, shift, scale = decoder_states(x, self.weights(), self.config, context, self.training)
        if self.quantiles:
            return self._quantiles(h_out, shift, scale)
        return to_forecast(self.head(h_out), shift, scale, self.config.horizon)

    def weights(self) -> Weights:
        """This model's parameters (the tensors themselves: gradients reach them)."""
        w_ih, w_hh, b_ih, b_hh = self.lstm.all_weights[0]
        embed, context = cast(nn.Linear, self.embed[0]), self.context
        return Weights(
            embed.weight,
            embed.bias,
            (w_ih, w_hh, b_ih, b_hh),
            self.position,
            self.channel,
            None if context is None else context.weight,
            None if context is None else context.bias,
        )

    def _quantiles(self, h_out: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
        """Decoder states (B, T, M, D) -> quantiles (B, H, T, Q) in the input's scale."""
        B, T, M, _ = h_out.shape
        S, H = self.config.segment, self.config.horizon
        h_out = self.head[0](h_out)  # one dropout mask for the median and the gaps
        median = self.head[1](h_out).reshape(B, T, M * S)[:, :, :H]  # (B, T, H)
        if len(self.quantiles) > 1:
            spread = self.spread(h_out).view(B, T, M * S, -1)[:, :, :H]  # (B, T, H, Q-1)
        else:
            spread = median.new_zeros(B, T, H, 0)  # the median alone
        y = quantile_outputs(median, spread, self.quantiles)  # (B, T, H, Q)
        # a positive scale, the same on every level, keeps their order
        return y.permute(0, 2, 1, 3) * scale[..., None] + shift[..., None]  # (B, H, T, Q)


class Weights(NamedTuple):
    """One SegLSTM's parameters in torch's layouts (nn.Linear's (out, in); nn.LSTM's gates in
    the order i, f, g, o), all but the output layer's. A SegLSTM passes its own; an ensemble
    run member by member passes each member's slices of its stacked weights."""

    embed_w: Tensor  # (D, S)
    embed_b: Tensor  # (D,)
    lstm: tuple[Tensor, Tensor, Tensor, Tensor]  # w_ih, w_hh (4D, D), b_ih, b_hh (4D,)
    position: Tensor  # (M, D - D/2)
    channel: Tensor  # (T, D/2)
    context_w: Tensor | None = None  # (D, C)
    context_b: Tensor | None = None  # (D,)


def decoder_states(
    x: Tensor, w: Weights, config: SegLSTMConfig, context: Tensor | None, training: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """A window (B, L, F) -> the decoder's hidden states (B, T, M, D) and RevIN's shift and
    scale (B, 1, T): SegLSTM up to its output layer."""
    # B batch, L lookback, T targets, S segment, N = ceil(L/S) input segments,
    # M = ceil(H/S) output segments, D hidden, H horizon
    B, L, _ = x.shape
    T, M, D = w.channel.shape[0], w.position.shape[0], w.embed_w.shape[0]
    S = config.segment
    N = math.ceil(L / S)
    x = x[:, :, :T]  # (B, L, T): variables never mix; past covariates are refused at build
    shift, scale = window_statistics(x, config)  # (B, 1, T) each
    x = (x - shift) / scale
    x = x.permute(0, 2, 1).reshape(B * T, L)  # (B*T, L): one sequence per variable
    if N * S > L:  # left-pad by repeating the first value
        x = torch.cat([x[:, :1].expand(-1, N * S - L), x], dim=1)  # (B*T, N*S)
    e = torch.relu(F.linear(x.view(B * T, N, S), w.embed_w, w.embed_b))  # (B*T, N, D)
    zeros = e.new_zeros(1, B * T, D)
    # nn.LSTM's own call (oneDNN's fused LSTM on the CPU, cuDNN on a GPU) on these weights
    _, h, c = torch.lstm(e, (zeros, zeros), list(w.lstm), True, 1, 0.0, training, False, True)

    # Decoder: one LSTM step per (sample, variable, output segment), all in parallel. Its
    # input depends only on (variable, segment) and its state only on (sample, variable),
    # so each matmul runs at that size and the sum broadcasts: 2M times cheaper than
    # nn.LSTM on B*T*M rows, same equations.
    queries = torch.cat(
        [
            w.position[None].expand(T, -1, -1),  # (T, M, D - D/2)
            w.channel[:, None].expand(-1, M, -1),  # (T, M, D/2)
        ],
        dim=-1,
    )  # (T, M, D)
    w_ih, w_hh, b_ih, b_hh = w.lstm  # the encoder's own weights
    from_input = F.linear(queries, w_ih, b_ih)  # (T, M, 4D)
    from_state = F.linear(h[0], w_hh, b_hh)  # (B*T, 4D)
    gates = from_input + from_state.view(B, T, 1, -1)  # (B, T, M, 4D), torch order i f g o
    if w.context_w is not None and context is not None:
        # the context's query part, the same for every variable and segment of a sample
        from_context = F.linear(F.linear(context, w.context_w, w.context_b), w_ih)  # (B, 4D)
        gates = gates + from_context.view(B, 1, 1, -1)
    i, f, g, o = gates.chunk(4, dim=-1)  # (B, T, M, D) each
    c_out = f.sigmoid() * c[0].view(B, T, 1, -1) + i.sigmoid() * g.tanh()  # (B, T, M, D)
    return o.sigmoid() * c_out.tanh(), shift, scale  # (B, T, M, D)


def to_forecast(y: Tensor, shift: Tensor, scale: Tensor, horizon: int) -> Tensor:
    """The output layer's segments (B, T, M, S) -> the forecast (B, H, T) in the input's
    scale (the last segment cropped to the horizon, RevIN undone)."""
    B, T, M, S = y.shape
    y = y.reshape(B, T, M * S)[:, :, :horizon]  # (B, T, H)
    return y.permute(0, 2, 1) * scale + shift  # (B, H, T)


def window_statistics(x: Tensor, config: SegLSTMConfig) -> tuple[Tensor, Tensor]:
    """Per-window, per-variable shift and scale (B, 1, T) of RevIN; (0, 1) without it."""
    if not config.revin:
        return torch.zeros_like(x[:, :1]), torch.ones_like(x[:, :1])
    if config.revin_mode == "last":
        return x[:, -1:].detach(), torch.ones_like(x[:, :1])
    mean = x.mean(dim=1, keepdim=True).detach()
    std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach()
    return mean, std
