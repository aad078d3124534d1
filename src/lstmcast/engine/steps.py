"""One optimisation step, run eagerly or replayed from a CUDA graph.

A step is: gather the batch by index from the on-device series, forward, loss, backward,
clip, optimizer update, and add the batch's summed loss into `running`. Small LSTMs are
latency-bound (a step is dozens of tiny kernels), so on CUDA the whole step is captured once
as a CUDA graph and replayed for every full batch, reading its batch from the epoch's shuffled
order at a device-side counter. The last partial batch of an epoch runs the same step
eagerly, so no window is dropped and nothing is re-captured. On the CPU there is no graph;
there the parameters become views of one flat buffer (FlatParameters), so zeroing, clipping
and the optimizer update are one operation each instead of one per tensor. Under DDP each
rank steps through its part of every global batch (`split_epoch`), its loss scaled so that
the averaged gradient is the global batch's.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import torch
from torch import nn

from lstmcast.engine.distributed import Share

StepFn = Callable[[torch.Tensor, float], None]  # (batch starts, loss scale)

WARMUP_STEPS = 3  # eager steps on a side stream before capture (optimizer state, cuDNN plans)


class FlatParameters:
    """The parameters as views of one flat buffer, and their gradients as views of another.

    The optimizer is given the one flat tensor (`data`, whose .grad is `grad`), so the
    optimizer update, the clipping norm and zeroing the gradients each run once per step
    instead of once per tensor: on a small model's CPU step they were a fifth of the time,
    nearly all of it per-call overhead. Autograd adds each parameter's gradient into its view
    in place (its .grad is always defined), so gradients are zeroed with `zero_grad`, never set
    to None. `release()` gives every parameter its own storage back (safetensors refuses
    tensors that share one).
    """

    def __init__(self, params: list[nn.Parameter]) -> None:
        self.params = params
        with torch.no_grad():
            self.data = torch.cat([p.detach().reshape(-1) for p in params])
        self.grad = torch.zeros_like(self.data)
        self.data.grad = self.grad
        offset = 0
        for p in params:
            size = p.numel()
            p.data = self.data[offset : offset + size].view_as(p)
            p.grad = self.grad[offset : offset + size].view_as(p)
            offset += size

    def zero_grad(self) -> None:
        self.grad.zero_()

    def clip_(self, max_norm: float) -> None:
        """clip_grad_norm_'s scaling, on the one buffer. The host reads the norm (on the CPU
        there is no device to wait for) and skips the multiply when nothing is clipped."""
        norm = float(torch.linalg.vector_norm(self.grad))
        if not norm <= max_norm:  # a NaN norm makes NaN gradients, as in clip_grad_norm_
            self.grad.mul_(max_norm / (norm + 1e-6))

    def release(self) -> None:
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None


def make_step(
    params: list[nn.Parameter],
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    running: torch.Tensor,
    clip_norm: float,
    amp: bool = False,
    flat: FlatParameters | None = None,
) -> StepFn:
    """The eager step: `step(batch_starts, scale)` trains on one batch and adds its loss sum
    to `running` without synchronising with the host. With `flat`, the optimizer holds
    `flat.data` and the gradients are zeroed and clipped there. `scale` multiplies the loss
    before backward (a DDP rank's share of the global batch, see `Share`); 0 marks a stand-in
    batch, which takes part in the gradient exchange and adds nothing to `running`."""
    device_type = running.device.type

    def step(starts: torch.Tensor, scale: float = 1.0) -> None:
        autocast = (
            torch.autocast(device_type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()
        )
        with autocast:
            loss = batch_loss(starts)
        if flat is None:
            optimizer.zero_grad(set_to_none=True)
        else:
            flat.zero_grad()
        (loss if scale == 1.0 else loss * scale).backward()
        if clip_norm > 0:
            if flat is None:
                nn.utils.clip_grad_norm_(params, clip_norm, foreach=True)
            else:
                flat.clip_(clip_norm)
        optimizer.step()
        if scale:
            running.add_(loss.detach().float() * starts.shape[0])

    return step


def epoch_order(n_windows: int, generator: torch.Generator) -> torch.Tensor:
    """A fresh permutation of the training windows for one epoch."""
    return torch.randperm(n_windows, generator=generator)


def batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Consecutive slices of `order`; the last may be partial and is kept (no silent drop).
    None of an empty `order` (torch.split would give one empty slice)."""
    return list(torch.split(order, batch_size)) if len(order) else []


def split_epoch(
    order: torch.Tensor, batch_size: int, share: Share
) -> tuple[torch.Tensor, int, float, torch.Tensor]:
    """This rank's part of an epoch's global `order`: (its windows of the full batches, one
    batch after another, the size of its part of one, that part's loss scale, the global
    last partial batch). One process: (the full batches, batch_size, 1.0, the partial)."""
    n_full = len(order) // batch_size
    full, tail = order[: n_full * batch_size], order[n_full * batch_size :]
    if share.world == 1:
        return full, batch_size, 1.0, tail
    lo, hi = share.bounds(batch_size)
    mine = full.view(n_full, batch_size)[:, lo:hi].reshape(-1)  # (n_full * part,)
    return mine, hi - lo, share.scale(batch_size), tail


def step_tail(step: StepFn, tail: torch.Tensor, share: Share) -> None:
    """The last partial batch: one process trains on all of it; a rank on its part, or on a
    stand-in window with scale 0 when the batch has fewer windows than there are ranks
    (every rank must take part in each gradient exchange)."""
    if not len(tail):
        return
    if share.world == 1:
        step(tail, 1.0)
        return
    part = share.part(tail)
    if len(part):
        step(part, share.scale(len(tail)))
    else:
        step(tail[:1], 0.0)


class EagerEpoch:
    """Runs one epoch as consecutive batches of `order`, the last one possibly partial
    (under DDP: this rank's part of each, see `split_epoch`)."""

    def __init__(self, step: StepFn, batch_size: int, share: Share | None = None) -> None:
        self.step = step
        self.batch_size = batch_size
        self.share = share or Share()

    def __call__(self, order: torch.Tensor) -> None:
        full, size, scale, tail = split_epoch(order, self.batch_size, self.share)
        for batch in batches(full, size):
            self.step(batch, scale)
        step_tail(self.step, tail, self.share)


class GraphEpoch:
    """Runs one epoch with every full batch replayed from one CUDA graph.

    The epoch's shuffled window starts are copied once into a static buffer; the captured step
    reads its batch from that buffer at a device-side counter and advances the counter, so a
    replay is the only launch per batch. The last partial batch runs the same step eagerly.
    The first epoch's first batches warm up eagerly (optimizer state, cuDNN plans, Triton
    compilation; under DDP its buckets, `warmup` of them) before capture. If capture fails, it
    says so once and stays eager. Under DDP each rank replays its part of every full batch
    (`split_epoch`), the all-reduce captured with the step.
    """

    def __init__(
        self,
        step: StepFn,
        batch_size: int,
        device: torch.device,
        share: Share | None = None,
        warmup: int = WARMUP_STEPS,
    ) -> None:
        self.step = step
        self.batch_size = batch_size
        self.device = device
        self.share = share or Share()
        self.warmup = warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False
        self.static_order = torch.zeros(0, dtype=torch.long, device=device)
        self.counter = torch.zeros(1, dtype=torch.long, device=device)
        self.part, self.scale = batch_size, 1.0

    def __call__(self, order: torch.Tensor) -> None:
        full, self.part, self.scale, tail = split_epoch(order, self.batch_size, self.share)
        n_full = len(full) // self.part
        first = 0
        if self.graph is None and not self.failed and n_full > self.warmup:
            self.static_order = torch.zeros_like(full)
            for first in range(self.warmup):
                self._warmup(full[first * self.part : (first + 1) * self.part])
            first = self.warmup
            self._capture()
        if self.graph is None:
            for batch in batches(full[first * self.part :], self.part):
                self.step(batch, self.scale)
            step_tail(self.step, tail, self.share)
            return
        self.static_order.copy_(full)
        self.counter.fill_(first)
        for _ in range(first, n_full):
            self.graph.replay()
        step_tail(self.step, tail, self.share)

    def _graph_step(self) -> None:
        batches = self.static_order.view(-1, self.part)
        starts = batches.index_select(0, self.counter).view(self.part)
        self.step(starts, self.scale)
        self.counter.add_(1)

    def _warmup(self, starts: torch.Tensor) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.step(starts, self.scale)
        torch.cuda.current_stream().wait_stream(side)

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        try:
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):
                self._graph_step()
        except Exception as exc:  # any capture failure means: run eagerly
            self.failed = True
            warnings.warn(
                f"CUDA graph capture failed ({type(exc).__name__}: {exc}); training eagerly",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        self.graph = graph


def supports_graphs(device: torch.device, enabled: bool) -> bool:
    return enabled and device.type == "cuda"
