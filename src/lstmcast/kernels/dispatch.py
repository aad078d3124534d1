"""Which backend runs a Keras LSTM layer on a given device and dtype: `backend()`, the one place
that decides it. Each kernel module says what it can run (`cpu_lstm.supports`,
`triton_lstm.supports`); the order of preference is here:

1. cpp: on the CPU, the whole layer in C++ (cpu_lstm), any activation it implements, float32;
   faster than oneDNN for these sizes. Off with LSTMCAST_CPU_EXTENSION=0, or where it cannot be
   built.
2. nn_lstm: tanh with `fused`, torch's nn.LSTM (cuDNN on CUDA, oneDNN on the CPU).
3. triton: on CUDA, the recurrence as two persistent Triton kernels (triton_lstm), which is
   what makes relu cost about what cuDNN's tanh costs.
4. loop: the torch loop with a closed-form backward (recurrence), for everything else.

The first two run the whole layer; the last two only the recurrence after the input
projection, through `keras_recurrence`. This module imports the kernel modules and none of
them imports it (nor each other), so the dependencies inside kernels/ have no cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import torch
from torch import Tensor

from lstmcast.kernels import cpu_lstm, triton_lstm
from lstmcast.kernels.recurrence import LoopRecurrence


class Backend(StrEnum):
    cpp = "cpp"
    nn_lstm = "nn_lstm"
    triton = "triton"
    loop = "loop"


def backend(
    activation: str, device: torch.device, dtype: torch.dtype, units: int, fused: bool
) -> Backend:
    """The backend that runs a layer of `units` units with `activation` on inputs of `dtype`
    on `device`; `fused=False` asks for the explicit recurrence instead of nn.LSTM for tanh
    (the C++ layer still comes first on the CPU)."""
    if device.type == "cpu" and cpu_lstm.supports(activation, dtype):
        return Backend.cpp
    if fused and activation == "tanh":  # nn.LSTM hard-wires tanh
        return Backend.nn_lstm
    if device.type == "cuda" and triton_lstm.supports(activation, units, dtype):
        return Backend.triton
    return Backend.loop


def keras_recurrence(
    xp: Tensor, w_hh_t: Tensor, activation: str, act: Callable[[Tensor], Tensor]
) -> Tensor:
    """Every hidden state (D, L, B, U) of the recurrence; differentiable in xp and w_hh_t.

    xp (D, L, B, 4U) holds the input projections, w_hh_t (D, U, 4U) the recurrent kernels.
    Asked with xp's dtype, which autocast may have lowered below the layer input's. Of the
    backends only Triton and the loop run the recurrence alone, so any answer but Triton (the
    C++ layer, for a direct call on the CPU) means the loop.
    """
    units = w_hh_t.shape[1]
    if backend(activation, xp.device, xp.dtype, units, fused=False) is Backend.triton:
        return triton_lstm.TritonRecurrence.apply(xp, w_hh_t, activation)
    return LoopRecurrence.apply(xp, w_hh_t, activation, act)
