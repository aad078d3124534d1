"""Persistent Triton kernels for Keras's LSTM recurrence with any supported activation.

cuDNN fuses only tanh. Written as a per-step torch loop, a relu LSTM launches ~10 kernels per
step forward and ~20 backward, and small models are latency-bound, so it ran at 0.05x the
cuDNN tanh speed at lookback 96. Here one program owns a block of batch rows for all time
steps: the forward kernel loops over t keeping h and c in registers; the backward kernel loops
back over t keeping dh and dc in registers. The recurrent matmuls are `tl.dot`s on
(BLOCK_B x U) tiles. Gradients of W_hh and of the input projection are then one batched
matmul each, outside the kernels.

Shapes: D directions (program axis 1), L steps, B batch, U units.
xp (D, L, B, 4U) input projections incl. bias; w_hh_t (D, U, 4U); outputs hs, cs (D, L, B, U)
and z (D, L, B, 4U) (pre-activations kept for the backward pass).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from lstmcast.kernels.activations import CODES
from lstmcast.kernels.gradients import recurrent_weight_grad

try:
    import triton
    import triton.language as tl

    AVAILABLE = True
except ImportError:  # CPU-only installs have no Triton; the torch loop is used instead
    AVAILABLE = False

MAX_UNITS = 128


def supports(activation: str, units: int, dtype: torch.dtype) -> bool:
    return AVAILABLE and activation in CODES and units <= MAX_UNITS and dtype == torch.float32


if AVAILABLE:
    # The codes of activations.CODES as compile-time constants: `ACT == TANH` below is decided
    # when a kernel is compiled for its ACT, like the literal it replaces. Triton lets a kernel
    # read a global only if it is a tl.constexpr.
    TANH = tl.constexpr(CODES["tanh"])
    RELU = tl.constexpr(CODES["relu"])
    SIGMOID = tl.constexpr(CODES["sigmoid"])
    LINEAR = tl.constexpr(CODES["linear"])
    ELU = tl.constexpr(CODES["elu"])
    SOFTSIGN = tl.constexpr(CODES["softsign"])
    HARD_SIGMOID = tl.constexpr(CODES["hard_sigmoid"])

    @triton.jit
    def _sigmoid(x):
        return 1.0 / (1.0 + tl.exp(-x))

    @triton.jit
    def _act(x, ACT: tl.constexpr):
        if ACT == TANH:
            e = tl.exp(-2.0 * tl.abs(x))
            y = (1.0 - e) / (1.0 + e)
            y = tl.where(x >= 0, y, -y)
        elif ACT == RELU:
            y = tl.maximum(x, 0.0)
        elif ACT == SIGMOID:
            y = _sigmoid(x)
        elif ACT == LINEAR:
            y = x
        elif ACT == ELU:
            y = tl.where(x > 0, x, tl.exp(tl.minimum(x, 0.0)) - 1.0)
        elif ACT == SOFTSIGN:
            y = x / (1.0 + tl.abs(x))
        elif ACT == HARD_SIGMOID:
            y = tl.minimum(tl.maximum(x / 6.0 + 0.5, 0.0), 1.0)
        else:  # supports() lets no other code through; fail at compile time, not silently
            tl.static_assert(False, "unknown activation code")
        return y

    @triton.jit
    def _act_grad(x, y, ACT: tl.constexpr):
        """d act / dx from the input x and the output y."""
        if ACT == TANH:
            d = 1.0 - y * y
        elif ACT == RELU:
            d = tl.where(x > 0, 1.0, 0.0)
        elif ACT == SIGMOID:
            d = y * (1.0 - y)
        elif ACT == LINEAR:
            d = tl.full(x.shape, 1.0, tl.float32)
        elif ACT == ELU:
            d = tl.where(x > 0, 1.0, y + 1.0)
        elif ACT == SOFTSIGN:
            a = 1.0 + tl.abs(x)
            d = 1.0 / (a * a)
        elif ACT == HARD_SIGMOID:
            d = tl.where((x > -3.0) & (x < 3.0), 1.0 / 6.0, 0.0)
        else:
            tl.static_assert(False, "unknown activation code")
        return d

    @triton.jit
    def _lstm_forward(
        xp_ptr, w_ptr, hs_ptr, cs_ptr, z_ptr, L, B, U,
        ACT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_U: tl.constexpr,
        PRECISION: tl.constexpr,
    ):  # fmt: skip
        pid = tl.program_id(0)
        d = tl.program_id(1)
        rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)  # batch rows of this program
        cols = tl.arange(0, BLOCK_U)  # units
        k = tl.arange(0, BLOCK_U)  # input units of the recurrent matmul
        mask = (rows[:, None] < B) & (cols[None, :] < U)
        w_mask = (k[:, None] < U) & (cols[None, :] < U)
        # W_hh^T (U, 4U) of direction d, one (BLOCK_U, BLOCK_U) tile per gate, zero-padded.
        w_base = w_ptr + d * U * 4 * U + k[:, None] * 4 * U + cols[None, :]
        w_i = tl.load(w_base, mask=w_mask, other=0.0)
        w_f = tl.load(w_base + U, mask=w_mask, other=0.0)
        w_g = tl.load(w_base + 2 * U, mask=w_mask, other=0.0)
        w_o = tl.load(w_base + 3 * U, mask=w_mask, other=0.0)
        h = tl.zeros((BLOCK_B, BLOCK_U), dtype=tl.float32)
        c = tl.zeros((BLOCK_B, BLOCK_U), dtype=tl.float32)
        # The input projections of step t+1 are loaded while step t computes (they do not
        # depend on h), hiding the global-memory latency behind the recurrence.
        g4 = (d * L * B + rows[:, None]) * 4 * U + cols[None, :]
        x_i = tl.load(xp_ptr + g4, mask=mask, other=0.0)
        x_f = tl.load(xp_ptr + g4 + U, mask=mask, other=0.0)
        x_g = tl.load(xp_ptr + g4 + 2 * U, mask=mask, other=0.0)
        x_o = tl.load(xp_ptr + g4 + 3 * U, mask=mask, other=0.0)
        for t in range(L):
            step = (d * L + t) * B + rows[:, None]  # row of (D*L*B) in the flat arrays
            g4 = step * 4 * U + cols[None, :]
            more = mask & (t + 1 < L)
            n_i = tl.load(xp_ptr + g4 + 4 * U * B, mask=more, other=0.0)
            n_f = tl.load(xp_ptr + g4 + 4 * U * B + U, mask=more, other=0.0)
            n_g = tl.load(xp_ptr + g4 + 4 * U * B + 2 * U, mask=more, other=0.0)
            n_o = tl.load(xp_ptr + g4 + 4 * U * B + 3 * U, mask=more, other=0.0)
            z_i = x_i
            z_f = x_f
            z_g = x_g
            z_o = x_o
            z_i += tl.dot(h, w_i, input_precision=PRECISION)
            z_f += tl.dot(h, w_f, input_precision=PRECISION)
            z_g += tl.dot(h, w_g, input_precision=PRECISION)
            z_o += tl.dot(h, w_o, input_precision=PRECISION)
            c = _sigmoid(z_f) * c + _sigmoid(z_i) * _act(z_g, ACT)
            h = _sigmoid(z_o) * _act(c, ACT)
            # padded columns may hold junk; they meet only zero rows of W, and are not stored
            tl.store(z_ptr + g4, z_i, mask=mask)
            tl.store(z_ptr + g4 + U, z_f, mask=mask)
            tl.store(z_ptr + g4 + 2 * U, z_g, mask=mask)
            tl.store(z_ptr + g4 + 3 * U, z_o, mask=mask)
            u1 = step * U + cols[None, :]
            tl.store(hs_ptr + u1, h, mask=mask)
            tl.store(cs_ptr + u1, c, mask=mask)
            x_i, x_f, x_g, x_o = n_i, n_f, n_g, n_o

    @triton.jit
    def _lstm_backward(
        z_ptr, cs_ptr, dhs_ptr, w_ptr, dz_ptr, L, B, U,
        ACT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_U: tl.constexpr,
        PRECISION: tl.constexpr,
    ):  # fmt: skip
        pid = tl.program_id(0)
        d = tl.program_id(1)
        rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)
        cols = tl.arange(0, BLOCK_U)
        k = tl.arange(0, BLOCK_U)
        mask = (rows[:, None] < B) & (cols[None, :] < U)
        w_mask = (cols[:, None] < U) & (k[None, :] < U)
        # dh_prev = sum_gates dz_gate @ W_gate where W_gate[j, k] = W_hh^T[k, gate*U + j]
        w_base = w_ptr + d * U * 4 * U + k[None, :] * 4 * U + cols[:, None]
        wt_i = tl.load(w_base, mask=w_mask, other=0.0)
        wt_f = tl.load(w_base + U, mask=w_mask, other=0.0)
        wt_g = tl.load(w_base + 2 * U, mask=w_mask, other=0.0)
        wt_o = tl.load(w_base + 3 * U, mask=w_mask, other=0.0)
        dh_next = tl.zeros((BLOCK_B, BLOCK_U), dtype=tl.float32)
        dc_next = tl.zeros((BLOCK_B, BLOCK_U), dtype=tl.float32)
        for back in range(L):
            t = L - 1 - back
            step = (d * L + t) * B + rows[:, None]
            g4 = step * 4 * U + cols[None, :]
            u1 = step * U + cols[None, :]
            i = _sigmoid(tl.load(z_ptr + g4, mask=mask, other=0.0))
            f = _sigmoid(tl.load(z_ptr + g4 + U, mask=mask, other=0.0))
            z_g = tl.load(z_ptr + g4 + 2 * U, mask=mask, other=0.0)
            g = _act(z_g, ACT)
            o = _sigmoid(tl.load(z_ptr + g4 + 3 * U, mask=mask, other=0.0))
            c = tl.load(cs_ptr + u1, mask=mask, other=0.0)
            c_prev = tl.load(cs_ptr + u1 - B * U, mask=mask & (t > 0), other=0.0)
            act_c = _act(c, ACT)
            dh = tl.load(dhs_ptr + u1, mask=mask, other=0.0) + dh_next
            dc = dc_next + dh * o * _act_grad(c, act_c, ACT)
            dz_i = dc * g * i * (1.0 - i)
            dz_f = dc * c_prev * f * (1.0 - f)
            dz_g = dc * i * _act_grad(z_g, g, ACT)
            dz_o = dh * act_c * o * (1.0 - o)
            dz_i = tl.where(mask, dz_i, 0.0)  # padded lanes must not leak into the matmul
            dz_f = tl.where(mask, dz_f, 0.0)
            dz_g = tl.where(mask, dz_g, 0.0)
            dz_o = tl.where(mask, dz_o, 0.0)
            tl.store(dz_ptr + g4, dz_i, mask=mask)
            tl.store(dz_ptr + g4 + U, dz_f, mask=mask)
            tl.store(dz_ptr + g4 + 2 * U, dz_g, mask=mask)
            tl.store(dz_ptr + g4 + 3 * U, dz_o, mask=mask)
            dc_next = dc * f
            dh_next = tl.dot(dz_i, wt_i, input_precision=PRECISION)
            dh_next += tl.dot(dz_f, wt_f, input_precision=PRECISION)
            dh_next += tl.dot(dz_g, wt_g, input_precision=PRECISION)
            dh_next += tl.dot(dz_o, wt_o, input_precision=PRECISION)


NUM_WARPS = int(os.environ.get("LSTMCAST_TRITON_WARPS", "4"))  # benchmarks/triton_tuning.py
BLOCK_B = int(os.environ.get("LSTMCAST_TRITON_BLOCK_B", "0"))  # 0: chosen by batch size


def _launch_shape(batch: int, units: int, directions: int) -> tuple[tuple[int, int], int, int]:
    block_u = max(16, triton.next_power_of_2(units))
    block_b = BLOCK_B or 16
    grid = (triton.cdiv(batch, block_b), directions)
    return grid, block_b, block_u


def _precision() -> str:
    # Follow torch's cuDNN setting, so relu matches what the fused tanh path does.
    return "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"


class TritonRecurrence(torch.autograd.Function):
    """Forward and backward of the recurrence, each one persistent kernel launch."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, xp: Tensor, w_hh_t: Tensor, activation: str
    ) -> Tensor:
        xp, w_hh_t = xp.contiguous(), w_hh_t.contiguous()
        D, L, B, G = xp.shape
        U = G // 4
        hs = xp.new_empty(D, L, B, U)
        cs = xp.new_empty(D, L, B, U)
        z = xp.new_empty(D, L, B, G)
        grid, block_b, block_u = _launch_shape(B, U, D)
        precision = _precision()
        _lstm_forward[grid](
            xp, w_hh_t, hs, cs, z, L, B, U,
            ACT=CODES[activation], BLOCK_B=block_b, BLOCK_U=block_u, PRECISION=precision,
            num_warps=NUM_WARPS,
        )  # fmt: skip
        ctx.save_for_backward(w_hh_t, hs, cs, z)
        ctx.activation = activation
        ctx.precision = precision
        return hs

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_hs: Tensor
    ) -> tuple[Tensor, Tensor, None]:
        w_hh_t, hs, cs, z = ctx.saved_tensors
        grad_hs = grad_hs.contiguous()
        D, L, B, U = hs.shape
        dz = torch.empty_like(z)
        grid, block_b, block_u = _launch_shape(B, U, D)
        _lstm_backward[grid](
            z, cs, grad_hs, w_hh_t, dz, L, B, U,
            ACT=CODES[ctx.activation], BLOCK_B=block_b, BLOCK_U=block_u,
            PRECISION=ctx.precision, num_warps=NUM_WARPS,
        )  # fmt: skip
        return dz, recurrent_weight_grad(hs, dz), None
