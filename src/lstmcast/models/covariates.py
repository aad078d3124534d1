"""Inputs known in advance, for every model: `WithCovariates` turns a batch's known-future
covariates over the horizon (B, H, C), static numeric values (B, S) and category codes (B, K)
into one context vector (B, H*C + S + sum of embedding widths) and hands it to its core model
beside the window. The core reads it in its head (the LSTM family, linear) or in its decoder
(seglstm); the target-only baselines (repeat_last, mean, seasonal_naive) ignore it by
definition. Without covariates no wrapper exists and the model is exactly the plain one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lstmcast.checks import check_int
from lstmcast.errors import ModelFileError


def embedding_width(cardinality: int) -> int:
    """The width of a category's embedding: half its number of levels, between 1 and 8 (a
    few levels need few dimensions; more than 8 overfits short panels)."""
    return max(1, min(8, (cardinality + 1) // 2))


@dataclass(frozen=True)
class CovariateSpec:
    """What the context vector holds: `n_future` known-future columns over `horizon` steps,
    `n_static` static numeric values, and one embedding per code column (its number of
    categories and its width)."""

    horizon: int
    n_future: int = 0
    n_static: int = 0
    cardinalities: tuple[int, ...] = ()
    widths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        check_int("horizon", self.horizon)
        check_int("n_future", self.n_future, minimum=0)
        check_int("n_static", self.n_static, minimum=0)
        object.__setattr__(self, "cardinalities", tuple(int(c) for c in self.cardinalities))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.cardinalities) != len(self.widths) or any(
            c < 1 for c in self.cardinalities + self.widths
        ):
            raise ModelFileError(
                f"covariates: cardinalities {self.cardinalities} and widths {self.widths} "
                f"must be positive and of one length"
            )

    @property
    def size(self) -> int:
        return self.horizon * self.n_future + self.n_static + sum(self.widths)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: object) -> CovariateSpec:
        if not isinstance(data, Mapping):
            raise ModelFileError(f"covariates: expected a JSON object, got {type(data).__name__}")
        try:
            return cls(
                horizon=data["horizon"],
                n_future=data.get("n_future", 0),
                n_static=data.get("n_static", 0),
                cardinalities=tuple(data.get("cardinalities", ())),
                widths=tuple(data.get("widths", ())),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"covariates: malformed record ({err})") from err


class WithCovariates(nn.Module):
    """A core model fed the window and the context vector of `spec`."""

    def __init__(self, core: nn.Module, spec: CovariateSpec) -> None:
        super().__init__()
        self.core = core
        self.spec = spec
        config: Any = core.config
        self.reads_context = bool(getattr(config, "context", 0))
        pairs = zip(spec.cardinalities, spec.widths, strict=True) if self.reads_context else ()
        self.embeddings = nn.ModuleList(nn.Embedding(c, w) for c, w in pairs)

    @property
    def config(self) -> Any:  # the core's: what the loop reads (e.g. its quantile levels)
        return self.core.config

    @property
    def name(self) -> str:
        return str(self.core.name)

    def forward(self, x: Tensor, future: Tensor, static: Tensor, codes: Tensor) -> Tensor:
        if not self.reads_context:
            return self.core(x)  # a target-only baseline
        parts = [future.flatten(1), static]
        parts += [embed(codes[:, k]) for k, embed in enumerate(self.embeddings)]
        return self.core(x, torch.cat(parts, dim=1))  # context (B, spec.size)
