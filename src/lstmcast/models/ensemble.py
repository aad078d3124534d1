"""K members of the LSTM family (`lstm` and the three presets) as one model: every weight gets
a leading member axis, one optimizer steps them all and every batch trains every member, as in
`seglstm_ensemble`. The forward runs member after member on its slices of the stacked weights
through the single model's own code (`torch.func.functional_call` on one `LSTMForecaster` that
holds the structure), so member k is exactly the single model with its weights, on the GPU's
kernels and the torch loop alike. Where every layer runs the CPU's C++ layer, which takes
weights with a member axis, all members run at once instead: the same structure called once on
the whole stacked weights with the input repeated per member (one layer call for all members,
one batched product for the heads) while the arrays that pass keeps fit the layer's cache of
blocks (`lstm.AT_ONCE_FLOATS`); `batched` forces either form.

The members are drawn one after another from the global RNG, so member 0 starts as the single
model of the same seed. Training sees every member's forecast (B, H, T, K) and `MemberLoss`
averages their own losses; evaluated, the model gives the mean (or median) of the members in
`keep`, or with `every_member` set all of them (their spread, their own errors). `Ensemble`,
the base of this class and of `SegLSTMEnsemble`, is that part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call


def kept_mean(y: Tensor, keep: Tensor) -> Tensor:
    """Every member's forecast (B, H, T, K) -> the mean of the members whose `keep` is 1."""
    keep = keep.to(y.dtype)
    return torch.einsum("bhtk,k->bht", y, keep) / keep.sum()


def kept_median(y: Tensor, keep: Tensor) -> Tensor:
    """Every member's forecast (B, H, T, K) -> the median of the members whose `keep` is 1
    (of an even count, the mean of the middle two)."""
    kept = y[..., keep > 0].sort(dim=-1).values
    n = kept.shape[-1]
    return (kept[..., (n - 1) // 2] + kept[..., n // 2]) / 2


class MemberLoss(nn.Module):
    """A loss of (B, H, T) forecasts applied to every member of (B, H, T, K): the mean of the
    members' own losses. A (B, H, T) forecast (the evaluated model's mean, one member's) is
    scored as it is."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, predicted: Tensor, target: Tensor) -> Tensor:
        if predicted.dim() == target.dim():
            return self.inner(predicted, target)
        return self.inner(predicted, target.unsqueeze(-1).expand_as(predicted))


class Ensemble(nn.Module):
    """What an ensemble trained as one model gives, whatever runs its members (`members`):
    in training (or with `every_member` set) every member's forecast (B, H, T, K); evaluated,
    the mean (or, with `reduce` "median", the median) of the members in `keep` (B, H, T)."""

    keep: Tensor  # (K,) 1 for the members the forecast uses

    def __init__(self, members: int, reduce: str) -> None:
        super().__init__()
        self.register_buffer("keep", torch.ones(members))
        self.every_member = False
        self.reduce = reduce

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        y = self.members(x, context)
        if self.training or self.every_member:
            return y
        return self.combine(y)

    def combine(self, y: Tensor) -> Tensor:
        """Every member's forecast (B, H, T, K) -> the ensemble's (B, H, T): the kept
        members' mean or median."""
        return (kept_median if self.reduce == "median" else kept_mean)(y, self.keep)

    def members(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Every member's forecast (B, H, T, K)."""
        raise NotImplementedError


class StackedEnsemble(Ensemble):
    # True: all members in one pass; False: member after member; None: one pass where the
    # structure can run it (see `members`). Set on an instance, or on the class for a benchmark.
    batched: bool | None = None

    def __init__(self, config: Any, make: Callable[[Any], nn.Module]) -> None:
        super().__init__(config.members, config.reduce)
        self.config = config
        single = dataclasses.replace(config, members=1)
        drawn = [make(single) for _ in range(config.members)]  # each its own draw
        if any(True for _ in drawn[0].buffers()):
            raise TypeError(f"{type(drawn[0]).__name__} has buffers; members stack weights only")
        # The structure the members run through; kept out of the module tree (its own weights
        # are never used, each call passes a member's), so it is neither saved nor trained.
        self.__dict__["structure"] = drawn[0]
        self.names = [name for name, _ in drawn[0].named_parameters()]
        self.stacked = nn.ParameterDict(
            {
                # frozen stays frozen (the LSTM's second bias: Keras has one per gate)
                self._key(name): nn.Parameter(
                    torch.stack([p.detach() for p in tensors]), tensors[0].requires_grad
                )
                for name, *tensors in zip(self.names, *(m.parameters() for m in drawn), strict=True)
            }
        )
        self.n_targets: int = drawn[0].n_targets  # type: ignore[assignment]
        self.horizon: int = drawn[0].horizon  # type: ignore[assignment]

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "-")  # ParameterDict keys hold no dots

    def members(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Every member's forecast (B, H, T, K): all at once where the structure can run them
        so (the C++ layer on the CPU), else member after member."""
        structure: nn.Module = self.__dict__["structure"]
        at_once = self.batched
        if at_once is None:
            at_once = bool(
                getattr(structure, "runs_members_at_once", lambda *_: False)(x, self.config.members)
            )
        if not at_once:
            return torch.stack([self.member(k, x, context) for k in range(self.config.members)], -1)
        K, B = self.config.members, x.shape[0]
        structure.train(self.training)
        weights = {name: self.stacked[self._key(name)] for name in self.names}
        inputs = (
            (x.repeat(K, 1, 1),) if context is None else (x.repeat(K, 1, 1), context.repeat(K, 1))
        )
        y = functional_call(structure, weights, inputs)  # (K*B, H, T), member-major
        return y.view(K, B, *y.shape[1:]).movedim(0, -1)

    def member(self, k: int, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Member k's forecast (B, H, T): the single model's code on its slices of the weights."""
        structure: nn.Module = self.__dict__["structure"]
        structure.train(self.training)  # its dropout follows the ensemble's mode
        weights = {name: self.stacked[self._key(name)][k] for name in self.names}
        inputs = (x,) if context is None else (x, context)
        return functional_call(structure, weights, inputs)
