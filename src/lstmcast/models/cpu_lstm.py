"""A whole Keras LSTM layer compiled as a C++ extension for the CPU (cpu_lstm.cpp).

Built once per machine on first use with torch.utils.cpp_extension (needs a C++ compiler and
ninja; the build is cached under ~/.cache/torch_extensions). Where it cannot be built,
`load()` returns None after one warning and the torch loop in recurrence.py runs instead.
"""

from __future__ import annotations

import hashlib
import os
import platform
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmcast.models.recurrence import KERNEL_ACTIVATIONS

ACT_CODES = KERNEL_ACTIVATIONS

# LSTMCAST_CPU_EXTENSION=0 turns the C++ layer off (tanh then runs oneDNN through nn.LSTM, the
# other activations the torch loop); for comparisons and as an escape hatch.
ENABLED = os.environ.get("LSTMCAST_CPU_EXTENSION", "1") != "0"


@cache
def load() -> ModuleType | None:
    """The compiled extension, or None (with one warning) if it cannot be built here."""
    try:
        from torch.utils.cpp_extension import load as build

        return build(
            name=f"lstmcast_cpu_lstm_v14_{_cpu_tag()}",
            sources=[str(Path(__file__).with_name("cpu_lstm.cpp"))],
            extra_cflags=[
                "-O3",
                "-march=native",
                "-fopenmp",  # at::parallel_for over row blocks; torch's own libgomp at run time
                "-ffast-math",
                "-fno-finite-math-only",
            ],
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as exc:  # no compiler, no ninja, no headers: the torch loop still works
        warnings.warn(
            f"lstmcast's compiled CPU LSTM loop could not be built ({type(exc).__name__}: "
            f"{str(exc)[:200]}); using the slower torch loop",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def _cpu_tag() -> str:
    """Short hash of the CPU model: the build uses -march=native, so a home directory shared
    by different machines must not share one binary."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next((line for line in text.splitlines() if line.startswith("model name")), "")
    except OSError:
        model = platform.processor()
    return hashlib.sha256(f"{platform.machine()} {model}".encode()).hexdigest()[:8]


def supports(activation: str, dtype: torch.dtype) -> bool:
    return ENABLED and activation in ACT_CODES and dtype == torch.float32 and load() is not None


class CompiledLayer(torch.autograd.Function):
    """A whole Keras LSTM layer, forward and backward, in C++ (see cpu_lstm.cpp).

    apply(x (B, L, I), activation, *weights) -> every hidden state (B, L, D, U), where weights
    are nn.LSTM's (w_ih, w_hh, b_ih, b_hh) for each direction in turn.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, activation: str, *weights: Tensor) -> Tensor:  # type: ignore[override]
        code = ACT_CODES[activation]
        hs, cs, gates, x_ones = load().forward(x, list(weights), code)  # type: ignore[union-attr]
        ctx.save_for_backward(x_ones, hs, cs, gates, *weights)
        ctx.code = code
        return hs

    @staticmethod
    def backward(ctx: Any, grad_hs: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x_ones, hs, cs, gates, *weights = ctx.saved_tensors
        dx, *per_direction = load().backward(  # type: ignore[union-attr]
            grad_hs, x_ones, weights, hs, cs, gates, ctx.code, ctx.needs_input_grad[0]
        )
        grads: list[Tensor | None] = [dx, None]
        for d in range(len(weights) // 4):
            dw_ih, dw_hh, dbias = per_direction[3 * d : 3 * d + 3]
            grads += [dw_ih, dw_hh, dbias, dbias]  # b_ih and b_hh enter as their sum
        return tuple(grads)


class CompiledDropout(torch.autograd.Function):
    """Inverted dropout whose mask is a hash of (element, seed): regenerated, not stored, in
    the backward pass. The seed comes from torch's generator, so torch.manual_seed repeats it."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, p: float) -> Tensor:  # type: ignore[override]
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
        ctx.p, ctx.seed = p, seed
        return load().dropout(x, p, seed)  # type: ignore[union-attr]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return load().dropout(grad, ctx.p, ctx.seed), None  # type: ignore[union-attr]


class Dropout(nn.Module):
    """nn.Dropout, with the compiled mask on the CPU (torch's CPU dropout is a Mersenne
    twister draw per element; see cpu_lstm.cpp). Elsewhere, or without the extension, it is
    torch's own."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type == "cpu" and supports("linear", x.dtype):
            return CompiledDropout.apply(x, self.p)
        return F.dropout(x, self.p, training=True)
