"""Keras's LSTM recurrence for any activation, with a hand-written backward pass.

`keras_recurrence(xp, w_hh_t, activation)` runs

    z = xp[t] + h @ W_hh^T;  i, f, o = sigmoid(z_i, z_f, z_o);  g = act(z_g)
    c = f * c + i * g;       h = o * act(c)

over all time steps and returns every hidden state. The input projection `xp` (one big matmul
over all steps) stays in ordinary autograd; only the sequential part is custom:

- On CUDA (when Triton is available and the width fits), one persistent Triton kernel runs the
  whole forward loop and one runs the whole backward loop: no per-step launches, which is what
  makes relu cost about what cuDNN's tanh costs (see lstmcast.models.triton_lstm).
- On the CPU, KerasLSTM runs the whole layer in C++ instead (lstmcast.models.cpu_lstm) and
  does not come here unless that extension cannot be built.
- Otherwise (no compiler, other activations) a torch loop runs forward without building an
  autograd graph and backward with the closed-form gradients.

Shapes: D directions, L steps, B batch, U units; xp (D, L, B, 4U), w_hh_t (D, U, 4U),
result (D, L, B, U).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

ActGrad = Callable[[Tensor, Tensor], Tensor]  # (pre-activation, activation) -> derivative

# Activations the compiled kernels (Triton, C++) implement, and the code each passes to them.
KERNEL_ACTIVATIONS = {
    "tanh": 0,
    "relu": 1,
    "sigmoid": 2,
    "linear": 3,
    "elu": 4,
    "softsign": 5,
    "hard_sigmoid": 6,
}

_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _gelu_grad(x: Tensor, _: Tensor) -> Tensor:
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return cdf + x * torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _silu_grad(x: Tensor, _: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


# d act(x) / dx from the input x and the output y = act(x) (whichever is cheaper).
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


def keras_recurrence(
    xp: Tensor, w_hh_t: Tensor, activation: str, act: Callable[[Tensor], Tensor]
) -> Tensor:
    """Every hidden state (D, L, B, U) of the recurrence; differentiable in xp and w_hh_t."""
    if xp.is_cuda:
        from lstmcast.models import triton_lstm

        if triton_lstm.supports(activation, w_hh_t.shape[1], xp.dtype):
            return triton_lstm.TritonRecurrence.apply(xp, w_hh_t, activation)
    return LoopRecurrence.apply(xp, w_hh_t, activation, act)


class LoopRecurrence(torch.autograd.Function):
    """The recurrence as a torch loop with a closed-form backward loop.

    On a CPU each small op costs a few microseconds whatever its size, so the loops are written
    for the fewest ops per step: results go straight into preallocated buffers, and every
    backward factor that does not depend on the incoming gradient is computed for all steps
    at once before the backward loop (leaving ~6 ops per step instead of ~26).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        xp: Tensor,
        w_hh_t: Tensor,
        activation: str,
        act: Callable[[Tensor], Tensor],
    ) -> Tensor:
        D, L, B, G = xp.shape
        U = G // 4
        hs = xp.new_empty(D, L, B, U)
        cs = xp.new_empty(D, L, B, U)
        z = xp.new_empty(D, L, B, G)  # pre-activations
        gates = xp.new_empty(D, L, B, G)  # activated i, f, g, o
        # Per-step views made once, so the loop body is nothing but the ops.
        x_t, z_t, gate_t = xp.unbind(1), z.unbind(1), gates.unbind(1)
        i_t, f_t, g_t, o_t = (part.unbind(1) for part in gates.view(D, L, B, 4, U).unbind(3))
        zg_t = z.view(D, L, B, 4, U)[..., 2, :].unbind(1)
        c_t, h_t = cs.unbind(1), hs.unbind(1)
        h = xp.new_zeros(D, B, U)
        c = xp.new_zeros(D, B, U)
        for t in range(L):
            torch.baddbmm(x_t[t], h, w_hh_t, out=z_t[t])  # (D, B, 4U)
            torch.sigmoid(z_t[t], out=gate_t[t])  # i, f, o; the g slice is overwritten next
            g_t[t].copy_(act(zg_t[t]))
            torch.mul(f_t[t], c, out=c_t[t])
            c_t[t].addcmul_(i_t[t], g_t[t])
            torch.mul(o_t[t], act(c_t[t]), out=h_t[t])
            h, c = h_t[t], c_t[t]
        ctx.save_for_backward(w_hh_t, hs, cs, gates, z)
        ctx.activation = activation
        ctx.act = act
        return hs

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_hs: Tensor
    ) -> tuple[Tensor, Tensor, None, None]:
        w_hh_t, hs, cs, gates, z = ctx.saved_tensors
        act, act_grad = ctx.act, ACTIVATION_GRADS[ctx.activation]
        D, L, B, U = hs.shape
        i, f, g, o = gates.view(D, L, B, 4, U).unbind(3)  # each (D, L, B, U)
        c_prev = torch.cat((cs.new_zeros(D, 1, B, U), cs[:, :-1]), dim=1)
        act_c = act(cs)
        # dz_i, dz_f, dz_g = dc * factor; dz_o = dh * out_factor; dc = dc_next + dh * dc_per_dh
        factors = torch.stack(
            (
                g * i * (1.0 - i),
                c_prev * f * (1.0 - f),
                i * act_grad(z.view(D, L, B, 4, U)[..., 2, :], g),
            ),
            dim=3,
        )  # (D, L, B, 3, U)
        out_factor = act_c * o * (1.0 - o)
        dc_per_dh = o * act_grad(cs, act_c)
        w_hh = w_hh_t.transpose(1, 2)  # (D, 4U, U)
        dz = grad_hs.new_empty(D, L, B, 4, U)
        dz_t, dzo_t = dz.unbind(1), dz[:, :, :, 3].unbind(1)
        dzifg_t = dz[:, :, :, :3].unbind(1)
        grad_t, factor_t, out_t = grad_hs.unbind(1), factors.unbind(1), out_factor.unbind(1)
        dcdh_t, f_t = dc_per_dh.unbind(1), f.unbind(1)
        dh = grad_t[L - 1]
        dc = torch.mul(dh, dcdh_t[L - 1])
        for t in range(L - 1, -1, -1):
            torch.mul(dc.unsqueeze(2), factor_t[t], out=dzifg_t[t])
            torch.mul(dh, out_t[t], out=dzo_t[t])
            if t == 0:
                break
            dh = torch.baddbmm(grad_t[t - 1], dz_t[t].view(D, B, 4 * U), w_hh)
            dc = torch.addcmul(dc * f_t[t], dh, dcdh_t[t - 1])
        dz = dz.view(D, L, B, 4 * U)
        return dz, recurrent_weight_grad(hs, dz), None, None


def recurrent_weight_grad(hs: Tensor, dz: Tensor) -> Tensor:
    """Gradient of W_hh^T (D, U, 4U): every step's previous hidden state (zeros before the
    first) against that step's pre-activation gradient dz (D, L, B, 4U)."""
    D, _, B, U = hs.shape
    h_prev = torch.cat((hs.new_zeros(D, 1, B, U), hs[:, :-1]), dim=1)  # (D, L, B, U)
    return weight_grad(h_prev, dz)


def weight_grad(inputs: Tensor, grads: Tensor) -> Tensor:
    """sum over steps and batch of inputs^T @ grads, per direction: (D, K, N).

    One matmul per direction, not a batched one: with K = L*B in the hundreds of thousands,
    cuBLAS picks split-K kernels for a plain matmul but not for a batched one (measured on
    an H100: 3.3 ms instead of ~0.1 ms at B=1024, L=96).
    """
    return torch.stack(
        [
            inputs[d].reshape(-1, inputs.shape[-1]).T @ grads[d].reshape(-1, grads.shape[-1])
            for d in range(inputs.shape[0])
        ]
    )
