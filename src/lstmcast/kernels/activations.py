"""Every activation of the Keras LSTM layer, once: its torch function, its derivative, and the
code that the compiled kernels (C++ and Triton) take for it.

`CODES` is the one table of those codes. The C++ layer gets it as macros on its compiler
command line (`cpp_defines()`: -DLSTMCAST_ACT_TANH=0 ...) and refuses to compile without them;
the Triton kernels compare against `tl.constexpr` globals read from it. So no number is
written twice, and tests/kernels/test_activations.py reads both sources to keep it so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Act = Callable[[Tensor], Tensor]
ActGrad = Callable[[Tensor, Tensor], Tensor]  # (pre-activation, activation) -> derivative

# The activations the compiled kernels implement, and the code each passes to them.
CODES: dict[str, int] = {
    "tanh": 0,
    "relu": 1,
    "sigmoid": 2,
    "linear": 3,
    "elu": 4,
    "softsign": 5,
    "hard_sigmoid": 6,
}


def constant_name(activation: str) -> str:
    """The name of the activation's code in the kernels' sources: the C++ enumerator and the
    Triton constant ("hard_sigmoid" -> "HARD_SIGMOID")."""
    return activation.upper()


def macro(activation: str) -> str:
    """The C++ macro that carries the activation's code ("tanh" -> "LSTMCAST_ACT_TANH")."""
    return f"LSTMCAST_ACT_{constant_name(activation)}"


def cpp_defines() -> list[str]:
    """The compiler flags that give cpu_lstm.cpp the codes of `CODES`."""
    return [f"-D{macro(name)}={code}" for name, code in CODES.items()]


def _identity(x: Tensor) -> Tensor:
    return x


# Keras activation names -> torch functions. Keras 3's hard_sigmoid is relu6(x + 3) / 6.
ACTIVATIONS: dict[str, Act] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": F.hardsigmoid,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,  # Keras default approximate=False, like torch
    "silu": F.silu,
    "swish": F.silu,
    "softsign": F.softsign,
    "softplus": F.softplus,
    "linear": _identity,
}

_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _gelu_grad(x: Tensor, _: Tensor) -> Tensor:
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return cdf + x * torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _silu_grad(x: Tensor, _: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


# d act(x) / dx from the input x and the output y = act(x) (whichever is cheaper); the torch
# loop's closed-form backward (recurrence.py) uses them.
ACTIVATION_GRADS: dict[str, ActGrad] = {
    "tanh": lambda x, y: 1.0 - y * y,
    "relu": lambda x, y: (x > 0).to(x.dtype),
    "sigmoid": lambda x, y: y * (1.0 - y),
    "hard_sigmoid": lambda x, y: ((x > -3.0) & (x < 3.0)).to(x.dtype) / 6.0,
    "elu": lambda x, y: torch.where(x > 0, torch.ones_like(x), y + 1.0),
    "selu": lambda x, y: torch.where(
        x > 0, torch.full_like(x, _SELU_SCALE), y + _SELU_SCALE * _SELU_ALPHA
    ),
    "gelu": _gelu_grad,
    "silu": _silu_grad,
    "swish": _silu_grad,
    "softsign": lambda x, y: 1.0 / (1.0 + x.abs()) ** 2,
    "softplus": lambda x, y: torch.sigmoid(x),
    "linear": lambda x, y: torch.ones_like(x),
}
