"""K seglstm members as one model: every weight has a leading member axis, one optimizer steps
them all, and every batch trains every member. Each layer runs for all members in one batched
matmul (`torch.bmm`/`einsum` over K): on a GPU one launch per layer, not K. On the CPU, where
each member's arrays are large and its encoder recurs (`by_member`), the forward runs member
by member through SegLSTM's own `decoder_states` instead (oneDNN's fused LSTM and a GEMM per
member on each member's slices): there the batched matmuls and the unfused gate arithmetic
over K-times larger arrays cost 1.1-1.6x more; on small arrays the batched ops win
(docs/performance.md). `batched` overrides the choice.

Member k computes exactly what a `SegLSTM` with its weights computes (the same equations, the
LSTM in torch's gate order i, f, g, o); the members are drawn one after another from the global
RNG, so member 0 starts as the single model of the same seed. Training sees every member's
forecast, (B, H, T, K), and the loss averages the members' own losses (`ensemble.MemberLoss`),
so each member learns as if alone, on the same batches; the training loop keeps each member's
own best validation epoch (`engine.training.MemberBest`). Evaluated, the model gives the mean (or
median; `ensemble.Ensemble`, its base) of the members it keeps (`keep`, a 0/1 buffer: a member
whose validation loss blew up is dropped after training); with `every_member` set it gives all
of them (their spread, their own errors).
"""

from __future__ import annotations

import dataclasses
import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmcast.kernels.cpu_lstm import Dropout
from lstmcast.models.ensemble import Ensemble
from lstmcast.models.seglstm import (
    SegLSTM,
    SegLSTMConfig,
    Weights,
    decoder_states,
    to_forecast,
    window_statistics,
)

# One member's states (B*T*D floats) from which the CPU runs the members one by one: measured
# on a 2-core AVX-512 VM, member by member was 1.13-1.55x faster from 2^18 to 2^20 (lookback
# 48-96); below, the forms were within 1.11x of each other until batched won by 1.4-2.2x at
# 2^13 and under; from one input segment batched was faster (benchmarks/ensemble_paths.py)
BY_MEMBER_SIZE = 2**18


class SegLSTMEnsemble(Ensemble):
    name = "seglstm"

    def __init__(self, config: SegLSTMConfig) -> None:
        super().__init__(config.members, config.reduce)
        self.config = config
        single = dataclasses.replace(config, members=1)
        drawn = [SegLSTM(single) for _ in range(config.members)]  # each its own draw

        def stacked(get: object, transpose: bool = False) -> nn.Parameter:
            tensors = [get(m) for m in drawn]  # type: ignore[operator]
            tensors = [t.detach().T if transpose else t.detach() for t in tensors]
            return nn.Parameter(torch.stack(tensors).contiguous())

        self.n_targets: int = drawn[0].n_targets
        self.n_in, self.n_out = drawn[0].n_in, drawn[0].n_out
        self.embed_w = stacked(lambda m: m.embed[0].weight, transpose=True)  # (K, S, D)
        self.embed_b = stacked(lambda m: m.embed[0].bias)  # (K, D)
        self.w_ih = stacked(lambda m: m.lstm.weight_ih_l0, transpose=True)  # (K, D, 4D)
        self.w_hh = stacked(lambda m: m.lstm.weight_hh_l0, transpose=True)  # (K, D, 4D)
        self.b_ih = stacked(lambda m: m.lstm.bias_ih_l0)  # (K, 4D)
        self.b_hh = stacked(lambda m: m.lstm.bias_hh_l0)  # (K, 4D)
        self.position = stacked(lambda m: m.position)  # (K, M, D - D/2)
        self.channel = stacked(lambda m: m.channel)  # (K, T, D/2)
        self.head_w = stacked(lambda m: m.head[1].weight, transpose=True)  # (K, D, S)
        self.head_b = stacked(lambda m: m.head[1].bias)  # (K, S)
        self.context_w = self.context_b = None
        if config.context:
            self.context_w = stacked(lambda m: m.context.weight, transpose=True)  # (K, C, D)
            self.context_b = stacked(lambda m: m.context.bias)  # (K, D)
        self.dropout = Dropout(config.dropout)
        self.batched: bool | None = None  # None: as `by_member` chooses

    def members(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Every member's forecast (B, H, T, K)."""
        if self.by_member(x):
            members = range(self.config.members)
            return torch.stack([self.member(k, x, context) for k in members], -1)
        return self._batched(x, context)

    def by_member(self, x: Tensor) -> bool:
        """Whether the forward on x runs member by member (else batched): `batched` if set,
        else on the CPU when one member's states (B*T*D floats) reach BY_MEMBER_SIZE and the
        encoder takes two segments or more (from one, the batched encoder skips the zero
        state's product, which oneDNN's LSTM computes)."""
        if self.batched is not None:
            return not self.batched
        size = x.shape[0] * self.n_targets * self.config.hidden
        return x.device.type == "cpu" and self.n_in >= 2 and size >= BY_MEMBER_SIZE

    def member(self, k: int, x: Tensor, context: Tensor | None = None) -> Tensor:
        """Member k's forecast (B, H, T), by SegLSTM's own code on its slices of the weights."""
        context_w, context_b = self.context_w, self.context_b
        weights = Weights(
            self.embed_w[k].T,
            self.embed_b[k],
            (self.w_ih[k].T, self.w_hh[k].T, self.b_ih[k], self.b_hh[k]),
            self.position[k],
            self.channel[k],
            None if context_w is None else context_w[k].T,
            None if context_b is None else context_b[k],
        )
        h_out, shift, scale = decoder_states(x, weights, self.config, context, self.training)
        y = F.linear(self.dropout(h_out), self.head_w[k].T, self.head_b[k])  # (B, T, M, S)
        return to_forecast(y, shift, scale, self.config.horizon)

    def _batched(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        # K members, B batch, L lookback, T targets, S segment, N input / M output segments
        B, L, _ = x.shape
        T, S, N, M = self.n_targets, self.config.segment, self.n_in, self.n_out
        K, D = self.config.members, self.config.hidden
        x = x[:, :, :T]
        shift, scale = window_statistics(x, self.config)  # (B, 1, T) each
        x = ((x - shift) / scale).permute(0, 2, 1).reshape(B * T, L)
        if N * S > L:  # left-pad by repeating the first value, as SegLSTM does
            x = torch.cat([x[:, :1].expand(-1, N * S - L), x], dim=1)
        R = B * T  # one sequence per (sample, variable)
        segments = x.reshape(1, R * N, S)  # row r * N + n: segment n of sequence r
        e = torch.relu(torch.matmul(segments, self.embed_w) + self.embed_b[:, None])  # (K, RN, D)
        bias = (self.b_ih + self.b_hh)[:, None]  # (K, 1, 4D)
        from_input = torch.baddbmm(bias, e, self.w_ih).view(K, R, N, 4 * D)
        h = c = x.new_zeros(K, R, D)
        # unbind, not from_input[:, :, n]: the backward then stacks the steps' gradients once
        # instead of filling a zero (K, R, N, 4D) gradient for each step
        for n, step in enumerate(from_input.unbind(2)):  # the encoder: all members at once
            # from the zero state the recurrent product and f * c are zeros: skipped (the
            # same floats, a quarter less work at 4 segments)
            gates = step + torch.bmm(h, self.w_hh) if n else step
            i, f, g, o = gates.chunk(4, dim=-1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh() if n else i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()  # (K, R, D)
        queries = torch.cat(
            [
                self.position[:, None].expand(-1, T, -1, -1),  # (K, T, M, D - D/2)
                self.channel[:, :, None].expand(-1, -1, M, -1),  # (K, T, M, D/2)
            ],
            dim=-1,
        )
        query_gates = torch.bmm(queries.reshape(K, T * M, D), self.w_ih).view(K, 1, T, M, 4 * D)
        state_gates = torch.baddbmm(bias, h, self.w_hh).view(K, B, T, 1, 4 * D)
        terms = [query_gates, state_gates]
        if self.context_w is not None and self.context_b is not None and context is not None:
            queried = torch.matmul(context, self.context_w) + self.context_b[:, None]  # (K, B, D)
            terms.append(torch.bmm(queried, self.w_ih).view(K, B, 1, 1, 4 * D))
        # Each gate (K, B, T, M, D) is the sum of its terms' chunks: the backward reduces each
        # gradient over its term's broadcast axes first, and never builds and cuts up a
        # (K, B, T, M, 4D) gradient of all four
        chunks = [term.chunk(4, dim=-1) for term in terms]  # each term's i, f, g, o parts
        i, f, g, o = (functools.reduce(torch.add, [c[j] for c in chunks]) for j in range(4))
        c_out = f.sigmoid() * c.view(K, B, T, 1, D) + i.sigmoid() * g.tanh()
        h_out = self.dropout(o.sigmoid() * c_out.tanh())  # (K, B, T, M, D)
        y = torch.baddbmm(self.head_b[:, None], h_out.reshape(K, B * T * M, D), self.head_w)
        y = y.view(K, B, T, M * S)[..., : self.config.horizon]  # (K, B, T, H)
        y = y.permute(1, 3, 2, 0)  # (B, H, T, K)
        return y * scale[..., None] + shift[..., None]  # in the input's scale
