"""The recurrence's time loop compiled as a C++ extension for the CPU (cpu_lstm.cpp).

Built once per machine on first use with torch.utils.cpp_extension (needs a C++ compiler and
ninja; the build is cached under ~/.cache/torch_extensions). Where it cannot be built,
`load()` returns None after one warning and the torch loop in recurrence.py runs instead.
"""

from __future__ import annotations

import hashlib
import platform
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from lstmcast.models.recurrence import KERNEL_ACTIVATIONS, recurrent_weight_grad

ACT_CODES = KERNEL_ACTIVATIONS


@cache
def load() -> ModuleType | None:
    """The compiled extension, or None (with one warning) if it cannot be built here."""
    try:
        from torch.utils.cpp_extension import load as build

        return build(
            name=f"lstmcast_cpu_lstm_v4_{_cpu_tag()}",
            sources=[str(Path(__file__).with_name("cpu_lstm.cpp"))],
            extra_cflags=[
                "-O3",
                "-march=native",
                "-fopenmp-simd",
                "-ffast-math",
                "-fno-finite-math-only",
            ],
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
    return activation in ACT_CODES and dtype == torch.float32 and load() is not None


class CompiledRecurrence(torch.autograd.Function):
    """Forward and backward time loops in C++; weight gradient as one matmul per direction."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, w_hh_t: Tensor, activation: str) -> Tensor:  # type: ignore[override]
        extension = load()
        hs, cs, gates, z = extension.forward(xp, w_hh_t, ACT_CODES[activation])  # type: ignore[union-attr]
        ctx.save_for_backward(w_hh_t, hs, cs, gates, z)
        ctx.activation = activation
        return hs

    @staticmethod
    def backward(ctx: Any, grad_hs: Tensor) -> tuple[Tensor, Tensor, None]:  # type: ignore[override]
        w_hh_t, hs, cs, gates, z = ctx.saved_tensors
        extension = load()
        dz = extension.backward(grad_hs, w_hh_t, cs, gates, z, ACT_CODES[ctx.activation])  # type: ignore[union-attr]
        return dz, recurrent_weight_grad(hs, dz), None
