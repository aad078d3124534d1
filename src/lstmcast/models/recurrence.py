"""Keras's LSTM recurrence for any activation, with a hand-written backward pass.

`keras_recurrence(xp, w_hh_t, activation)` runs

    z = xp[t] + h @ W_hh^T;  i, f, o = sigmoid(z_i, z_f, z_o);  g = act(z_g)
    c = f * c + i * g;       h = o * act(c)

over all time steps and returns every hidden state. The input projection `xp` (one big matmul
over all steps) stays in ordinary autograd; only the sequential part is custom:

- On CUDA (when Triton is available and the width fits), one persistent Triton kernel runs the
  whole forward loop and one runs the whole backward loop: no per-step launches, which is what
  makes relu cost about what cuDNN's tanh costs (see lstmcast.models.triton_lstm).
- Elsewhere a torch loop runs forward without building an autograd graph and backward with
  the closed-form gradients, about half the operations autograd would record.

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
    """The recurrence as a torch loop with a closed-form backward loop."""

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
        gates = xp.new_empty(D, L, B, G)  # activated i, f, g, o
        z_g = xp.new_empty(D, L, B, U)  # candidate before its activation (for act')
        h = xp.new_zeros(D, B, U)
        c = xp.new_zeros(D, B, U)
        for t in range(L):
            z = torch.baddbmm(xp[:, t], h, w_hh_t)  # (D, B, 4U)
            z_g[:, t] = z[..., 2 * U : 3 * U]
            gate = gates[:, t]
            torch.sigmoid(z, out=gate)  # i, f, o (the g slice is overwritten next)
            gate[..., 2 * U : 3 * U] = act(z_g[:, t])
            i, f, g, o = gate.split(U, dim=-1)
            c = torch.addcmul(f * c, i, g)
            h = o * act(c)
            cs[:, t] = c
            hs[:, t] = h
        ctx.save_for_backward(w_hh_t, hs, cs, gates, z_g)
        ctx.activation = activation
        ctx.act = act
        return hs

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_hs: Tensor
    ) -> tuple[Tensor, Tensor, None, None]:
        w_hh_t, hs, cs, gates, z_g = ctx.saved_tensors
        act, act_grad = ctx.act, ACTIVATION_GRADS[ctx.activation]
        D, L, B, U = hs.shape
        dz = grad_hs.new_empty(D, L, B, 4 * U)
        w_hh = w_hh_t.transpose(1, 2)  # (D, 4U, U)
        dh_next = grad_hs.new_zeros(D, B, U)
        dc_next = grad_hs.new_zeros(D, B, U)
        zeros = grad_hs.new_zeros(D, B, U)
        for t in range(L - 1, -1, -1):
            i, f, g, o = gates[:, t].split(U, dim=-1)
            c = cs[:, t]
            c_prev = cs[:, t - 1] if t > 0 else zeros
            act_c = act(c)
            dh = grad_hs[:, t] + dh_next
            dc = dc_next + dh * o * act_grad(c, act_c)
            dz_t = dz[:, t]
            dz_t[..., :U] = dc * g * i * (1.0 - i)
            dz_t[..., U : 2 * U] = dc * c_prev * f * (1.0 - f)
            dz_t[..., 2 * U : 3 * U] = dc * i * act_grad(z_g[:, t], g)
            dz_t[..., 3 * U :] = dh * act_c * o * (1.0 - o)
            dc_next = dc * f
            dh_next = torch.bmm(dz_t, w_hh)  # (D, B, U)
        h_prev = torch.cat((hs.new_zeros(D, 1, B, U), hs[:, :-1]), dim=1)  # (D, L, B, U)
        return dz, weight_grad(h_prev, dz), None, None


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
