"""A whole Keras LSTM layer compiled as a C++ extension for the CPU (cpu_lstm.cpp).

Built on first use with torch.utils.cpp_extension (needs a C++ compiler and ninja), once per
environment and source version. torch rebuilds whenever the source path or compiler command
recorded in a build folder differs, and that command holds the environment's include paths; so
one folder shared by every checkout and venv, each building its own file, made them rebuild it
for each other (~30 s each time). Here the extension's name, and with it its folder, is a hash
of everything the binary depends on (source, flags with the activation codes, CPU model for
-march=native, torch's version, sys.prefix and Python's version), and torch compiles a copy of
the source kept in that folder, rewritten only when absent or different (a new mtime would
rebuild too): every checkout with that source in that environment asks for the same build.
Builds live under TORCH_EXTENSIONS_DIR if set, else torch's cache (~/.cache/torch_extensions).
Where the extension cannot be built, `load()` returns None after one warning and the torch loop
in recurrence.py runs instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmcast.files import atomic_write
from lstmcast.kernels.activations import CODES, cpp_defines

# LSTMCAST_CPU_EXTENSION=0 turns the C++ layer off (tanh then runs oneDNN through nn.LSTM, the
# other activations the torch loop); for comparisons and as an escape hatch.
ENABLED = os.environ.get("LSTMCAST_CPU_EXTENSION", "1") != "0"

SOURCE = Path(__file__).with_name("cpu_lstm.cpp")
CFLAGS = (
    "-O3",
    "-march=native",
    "-fopenmp",  # at::parallel_for over row blocks; torch's own libgomp at run time
    "-ffast-math",
    "-fno-finite-math-only",
)
LDFLAGS = ("-fopenmp",)


@cache
def load() -> ModuleType | None:
    """The compiled extension, or None (with one warning) if it cannot be built here."""
    return try_build(SOURCE)


def try_build(source: Path) -> ModuleType | None:
    """`build(source)`, or None with one warning if that fails."""
    try:
        return build(source)
    except Exception as exc:  # no compiler, no ninja, no headers: the torch loop still works
        warnings.warn(
            f"lstmcast's compiled CPU LSTM loop could not be built ({type(exc).__name__}: "
            f"{str(exc)[:200]}); using the slower torch loop",
            RuntimeWarning,
            stacklevel=3,  # load()'s caller
        )
        return None


def build(source: Path) -> ModuleType:
    """The extension built from a copy of `source` in its build folder (where that build is
    up to date, torch only loads it)."""
    from torch.utils.cpp_extension import load as load_extension  # slow to import: on use

    code = source.read_bytes()
    cflags = [*CFLAGS, *cpp_defines()]
    name = extension_name(code, cflags)
    folder = build_root() / name
    copy = folder / source.name
    _write_if_changed(copy, code)
    return load_extension(
        name=name,
        sources=[str(copy)],
        extra_cflags=cflags,
        extra_ldflags=list(LDFLAGS),
        build_directory=str(folder),
        verbose=False,
    )


def extension_name(code: bytes, cflags: Sequence[str]) -> str:
    """lstmcast_cpu_lstm_<hash of everything the binary depends on>: processes that would
    build the same binary share one build, and no two different binaries share a folder."""
    inputs = {
        "source": hashlib.sha256(code).hexdigest(),
        "cflags": list(cflags),
        "ldflags": list(LDFLAGS),
        "cpu": _cpu_tag(),
        "torch": torch.__version__,
        "prefix": sys.prefix,
        "python": platform.python_version(),  # a venv rebuilt in place on a new Python
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return f"lstmcast_cpu_lstm_{digest[:16]}"


def build_root() -> Path:
    """The folder of torch's extension builds: TORCH_EXTENSIONS_DIR, else torch's cache. (Our
    name already tells Python and accelerator builds apart, the job of the subfolder torch adds
    by default.)"""
    from torch.utils.cpp_extension import get_default_build_root

    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root())


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write `data` atomically (a concurrent build never reads half a file), and only if the
    file is absent or different (an unchanged file keeps its mtime, so ninja rebuilds nothing)."""
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    atomic_write(path, data)


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
    return ENABLED and activation in CODES and dtype == torch.float32 and load() is not None


class CompiledLayer(torch.autograd.Function):
    """A whole Keras LSTM layer, forward and backward, in C++ (see cpu_lstm.cpp).

    apply(x (B, L, I), activation, all_steps, *weights) -> every hidden state (B, L, D, U) when
    `all_steps`, else each direction's state after its last step (B, D, U), where weights are
    nn.LSTM's (w_ih, w_hh, b_ih, b_hh) for each direction in turn. The backward pass gets the
    gradient of just what was returned: no (B, L, D, U) of zeros for the steps not output.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, activation: str, all_steps: bool, *weights: Tensor) -> Tensor:  # type: ignore[override]
        code = CODES[activation]
        hs, cs, gates, x_ones = load().forward(x, list(weights), code)  # type: ignore[union-attr]
        ctx.save_for_backward(x_ones, hs, cs, gates, *weights)
        ctx.code, ctx.all_steps = code, all_steps
        if all_steps:
            return hs
        return torch.stack([hs[:, -1, 0]] + ([hs[:, 0, 1]] if hs.shape[2] == 2 else []), dim=1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x_ones, hs, cs, gates, *weights = ctx.saved_tensors
        dx, *per_direction = load().backward(  # type: ignore[union-attr]
            grad, x_ones, weights, hs, cs, gates, ctx.code, ctx.needs_input_grad[0], ctx.all_steps
        )
        grads: list[Tensor | None] = [dx, None, None]
        for d in range(len(weights) // 4):
            dw_ih, dw_hh, dbias = per_direction[3 * d : 3 * d + 3]
            grads += [dw_ih, dw_hh, dbias, dbias]  # b_ih and b_hh enter as their sum
        return tuple(grads)


def layer(x: Tensor, activation: str, weights: Sequence[Tensor], all_steps: bool) -> Tensor:
    """The compiled layer on x (B, L, I): every hidden state (B, L, D, U) when `all_steps`, else
    each direction's state after its last step (B, D, U). Where no gradient is wanted it runs
    the forward pass alone (`infer`), which keeps neither the states nor the gates that the
    backward pass would read: the same floats, ~13% less time at batch 10,000."""
    if torch.is_grad_enabled() and (x.requires_grad or any(w.requires_grad for w in weights)):
        return CompiledLayer.apply(x, activation, all_steps, *weights)
    return load().infer(x, list(weights), CODES[activation], all_steps)  # type: ignore[union-attr]


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
