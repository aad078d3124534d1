"""Keras's LSTM recurrence for any activation as a torch loop, with a hand-written backward pass.

`LoopRecurrence.apply(xp, w_hh_t, activation, act)` runs

    z = xp[t] + h @ W_hh^T;  i, f, o = sigmoid(z_i, z_f, z_o);  g = act(z_g)
    c = f * c + i * g;       h = o * act(c)

over all time steps and returns every hidden state. The input projection `xp` (one big matmul
over all steps) stays in ordinary autograd; only the sequential part is custom: forward without
building an autograd graph, backward with the closed-form gradients.

It is the reference the compiled kernels are tested against, and what runs where they cannot:
activations they do not implement, no compiler for the C++ layer, no Triton on CUDA. Which of
them runs a layer is decided in one place, lstmcast.kernels.dispatch.

Shapes: D directions, L steps, B batch, U units; xp (D, L, B, 4U), w_hh_t (D, U, 4U),
result (D, L, B, U).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lstmcast.kernels.activations import ACTIVATION_GRADS
from lstmcast.kernels.gradients import recurrent_weight_grad


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
