"""The one training loop.

The scaled series lives as one tensor on the training device; each batch is gathered there by
index from a shuffled list of window starts, so no window array and no DataLoader exist.
Every epoch: shuffle, step through all training windows (the last partial batch included),
measure the validation loss, keep the best weights, stop early. An ensemble trained as one
model (`config.members` K > 1, every weight with a leading member axis) keeps each member's
own best epoch and patience, as if it were trained alone (`MemberBest`). An epoch that
diverges (loss not finite, or EXPLODE_FACTOR times the starting loss) is undone: training goes
on from the best weights so far with a fresh optimizer at LR_CUT times the learning rate, at
most `divergence_retries` times, and then stops with a message.

Callbacks (`callbacks=[...]`) are the loop's one seam: each receives an `Epoch` after every
epoch, with the optimizer that trains the next one, so a learning-rate schedule, logging, a
progress display or Optuna's pruning are plain functions outside the loop. Nothing here prints.

Under torchrun (a process group active) the same loop trains one model with
DistributedDataParallel: every rank steps through its share of each global batch, and the
losses that decide are summed over the ranks (see `lstmcast.engine.distributed`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from lstmcast.config import RunConfig
from lstmcast.engine import distributed
from lstmcast.engine.batching import Layout, gather_batch, gather_targets
from lstmcast.engine.checkpoint import Checkpoint, TrainState, from_bytes, to_bytes
from lstmcast.engine.distributed import DDP_GRAPH_WARMUP, Share
from lstmcast.engine.steps import (
    WARMUP_STEPS,
    EagerEpoch,
    FlatParameters,
    GraphEpoch,
    epoch_order,
    make_step,
    supports_graphs,
)
from lstmcast.errors import ConfigError

EXPLODE_FACTOR = 1e3  # a training loss this many times the starting loss counts as divergence
LR_CUT = 0.25  # the learning rate is multiplied by this after each divergence
EVAL_BATCH = 4096


@dataclass(frozen=True)
class Epoch:
    """What a callback receives after each epoch.

    `kept` is False for an epoch that diverged (its val_loss is NaN): it was undone, or it
    ended training. `optimizer` is the one that trains the next epoch; setting
    `optimizer.param_groups[i]["lr"]` changes the learning rate from the next epoch on (the
    loop reads it back, re-capturing the CUDA graph when one is used). A callback may raise
    to stop training (e.g. optuna.TrialPruned); the exception leaves `train`.
    """

    number: int  # 1-based
    epochs: int  # the planned total (config.epochs)
    train_loss: float
    val_loss: float
    lr: float  # the learning rate this epoch trained with
    best_epoch: int
    best_val_loss: float
    kept: bool
    optimizer: torch.optim.Optimizer
    model: nn.Module  # as trained so far (not yet the best epoch's weights)


Callback = Callable[[Epoch], None]


@dataclass
class TrainResult:
    """What happened during training. `history` has one dict per epoch."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stopped: str = "completed"  # completed | early_stopping | diverged | untrained
    message: str = ""
    device: str = "cpu"
    seconds: float = 0.0
    member_best_epochs: list[int] = field(default_factory=list)  # an ensemble's, per member

    def to_dict(self) -> dict[str, object]:
        members = {"member_best_epochs": self.member_best_epochs} if self.member_best_epochs else {}
        return {
            "epochs_run": len(self.history),
            "best_epoch": self.best_epoch,
            "best_val_loss": _finite_or_none(self.best_val_loss),
            "stopped": self.stopped,
            "message": self.message,
            "device": self.device,
            "seconds": round(self.seconds, 3),
            "history": [{k: _finite_or_none(v) for k, v in row.items()} for row in self.history],
            **members,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainResult:
        """The inverse of `to_dict` (None back to inf or NaN); missing keys keep defaults."""
        best = d.get("best_val_loss")
        return cls(
            history=[
                {
                    k: math.nan if v is None else int(v) if k == "epoch" else v
                    for k, v in row.items()
                }
                for row in d.get("history") or []
            ],
            best_epoch=int(d.get("best_epoch", 0)),
            best_val_loss=math.inf if best is None else float(best),
            stopped=str(d.get("stopped", "completed")),
            message=str(d.get("message", "")),
            device=str(d.get("device", "cpu")),
            seconds=float(d.get("seconds", 0.0)),
            member_best_epochs=[int(e) for e in d.get("member_best_epochs") or []],
        )


@dataclass
class MemberBest:
    """Early stopping for an ensemble trained as one model: member k keeps the weights of the
    epoch where its own validation loss was lowest (slice k of every state tensor) and counts
    its own epochs without improvement, so each member stops as if it were trained alone;
    training ends when the last one has run out of patience."""

    losses: list[float]  # each member's best validation loss
    epochs: list[int]  # the epoch it was reached in (0: the initial weights)
    bad: list[int]  # epochs since then

    @classmethod
    def start(cls, losses: Sequence[float]) -> MemberBest:
        return cls([float(v) for v in losses], [0] * len(losses), [0] * len(losses))

    def update(
        self,
        epoch: int,
        losses: Sequence[float],
        state: dict[str, torch.Tensor],
        best_state: dict[str, torch.Tensor],
    ) -> None:
        """Copy into `best_state` the members of `state` whose loss improved."""
        for k, loss in enumerate(losses):
            if loss < self.losses[k]:
                self.losses[k], self.epochs[k], self.bad[k] = float(loss), epoch, 0
                for name, tensor in state.items():
                    best_state[name][k].copy_(tensor[k])
            else:
                self.bad[k] += 1

    def counters(self) -> dict[str, list[float] | list[int]]:
        return {"member_best": self.losses, "member_epochs": self.epochs, "member_bad": self.bad}

    @classmethod
    def from_counters(cls, c: dict[str, Any]) -> MemberBest:
        losses = [float(v) for v in c["member_best"]]
        return cls(losses, [int(v) for v in c["member_epochs"]], [int(v) for v in c["member_bad"]])


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when available, else the CPU. In a DDP run (a process group is
    active) each rank's own device: cuda:LOCAL_RANK or the CPU (see `distributed`)."""
    if distributed.active():
        return distributed.group_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for but CUDA is not available here; use cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps was asked for but MPS is not available here; use cpu")
    return torch.device(name)


def make_optimizer(
    params: list[nn.Parameter] | list[torch.Tensor],
    config: RunConfig,
    capturable: bool = False,
    lr: float | None = None,
) -> torch.optim.Optimizer:
    """eps and rho follow Keras's defaults, so the reference models train as they do there.

    `capturable` keeps the step count on the device so the update can live in a CUDA graph.
    Elsewhere the fused single-kernel update is used where torch has one: with the
    per-parameter loop, Adam was a quarter of a small model's CPU step.
    """
    decay = config.weight_decay
    lr = config.lr if lr is None else lr
    fused = None if capturable else True
    if config.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=lr, eps=1e-7, weight_decay=decay, capturable=capturable, fused=fused
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=lr, eps=1e-7, weight_decay=decay, capturable=capturable, fused=fused
        )
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=lr, alpha=0.9, eps=1e-7, weight_decay=decay, capturable=capturable
        )
    return torch.optim.SGD(params, lr=lr, weight_decay=decay, fused=fused)


class PinballLoss(nn.Module):
    """The pinball (quantile) loss averaged over the Q levels, steps, targets and batch:
    pred (B, H, V, Q), target (B, H, V). For level tau and error e = target - pred it is
    max(tau * e, (tau - 1) * e); its minimiser is the tau-quantile."""

    taus: torch.Tensor

    def __init__(self, quantiles: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("taus", torch.tensor(tuple(quantiles), dtype=torch.float32))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != (*target.shape, len(self.taus)):
            raise ValueError(
                f"The pinball loss needs predictions {(*target.shape, len(self.taus))} "
                f"(targets and {len(self.taus)} quantiles). Got {tuple(pred.shape)}."
            )
        error = target[..., None] - pred  # (B, H, V, Q)
        return torch.maximum(self.taus * error, (self.taus - 1) * error).mean()


def make_loss(name: str, quantiles: Sequence[float] = ()) -> nn.Module:
    """The training loss `name` (mse | mae | huber) of pred and target (B, H, V).

    With `quantiles` (a model with a quantile head, pred (B, H, V, Q)), the pinball loss over
    those levels replaces `name` (so `--loss` has no effect there): see `PinballLoss`.
    """
    if len(quantiles):
        return PinballLoss(quantiles)
    return {"mse": nn.MSELoss(), "mae": nn.L1Loss(), "huber": nn.HuberLoss(delta=1.0)}[name]


def train(
    model: nn.Module,
    series: torch.Tensor,
    train_starts: np.ndarray,
    val_starts: np.ndarray,
    config: RunConfig,
    *,
    n_targets: int,
    callbacks: Sequence[Callback] = (),
    layout: Layout | None = None,
    checkpoint: Checkpoint | None = None,
) -> TrainResult:
    """Train `model` in place on windows of `series` (T, F), already on the training device.

    `train_starts`/`val_starts` are window start rows. The model ends with the weights of its
    best validation epoch (the training loss stands in when there are no validation windows).
    Every callback gets an `Epoch` after each epoch (see `Epoch`). `layout` names the column
    roles of `series` when it holds covariates known in advance (default: every column is an
    input, the first `n_targets` the targets). With `checkpoint`, the loop's whole state is
    saved after every epoch, and with `checkpoint.resume` training goes on from the saved
    epoch (see `lstmcast.engine.checkpoint`).

    While a process group is active (torchrun, see `lstmcast.engine.distributed`) every rank
    calls this with the same arguments; they train one model with DDP, each on its share of
    every global batch of `config.batch_size`, and end with the same weights and result.
    Only rank 0 writes the checkpoint; on resume it sends the saved state to the others.
    """
    started = time.perf_counter()
    device = series.device
    result = TrainResult(device=str(device))
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        result.stopped = "untrained"
        result.message = "no trainable parameters"
        return result

    share = Share.of_group()
    if config.batch_size < share.world:
        raise ConfigError(
            f"--batch-size {config.batch_size} is smaller than the {share.world} processes "
            f"training together; every process needs a window of each batch"
        )
    if distributed.active():  # every rank starts from rank 0's weights
        distributed.broadcast_module(model)
    lookback, horizon = config.lookback_rows, config.horizon
    use_graph = supports_graphs(device, config.cuda_graph)
    # a quantile head trains (and early-stops) on the pinball loss of its own levels
    quantiles = tuple(getattr(getattr(model, "config", None), "quantiles", None) or ())
    loss_fn = make_loss(config.loss, quantiles)
    ensemble = _ensemble(model)
    if ensemble is not None:  # an ensemble trained as one: every member's own loss
        from lstmcast.models.ensemble import MemberLoss

        loss_fn = MemberLoss(loss_fn)
    loss_fn = loss_fn.to(device)
    train_idx = torch.as_tensor(train_starts, dtype=torch.long, device=device)
    val_idx = torch.as_tensor(val_starts, dtype=torch.long, device=device)
    score_idx = val_idx if len(val_idx) else train_idx
    shuffler = torch.Generator().manual_seed(config.seed)  # the same order on every rank

    layout = layout or Layout.plain(series.shape[1], n_targets)

    def forecast(starts: torch.Tensor, net: nn.Module = model) -> tuple[torch.Tensor, ...]:
        """(the forecasts, the targets (B, H, V)) of windows `starts`."""
        inputs = gather_batch(series, starts, lookback, horizon, layout)  # (x (B, L, F), ...)
        targets = gather_targets(series, starts, lookback, horizon, n_targets)
        return net(*inputs), targets

    def window_loss(starts: torch.Tensor, net: nn.Module = model) -> torch.Tensor:
        return loss_fn(*forecast(starts, net))

    @torch.no_grad()
    def scores(starts: torch.Tensor) -> tuple[float, list[float]]:
        """The mean loss of windows `starts` (of an ensemble's mean forecast), and each
        member's own (empty for one model); under DDP each rank scores its part."""
        model.eval()
        part = share.part(starts)
        K = 0 if ensemble is None else ensemble.config.members
        total = torch.zeros(1 + K, device=device)
        if ensemble is not None:
            ensemble.every_member = True  # forecasts (B, H, V, K): the mean and each member
        try:
            for i in range(0, len(part), EVAL_BATCH):
                chunk = part[i : i + EVAL_BATCH]
                predicted, targets = forecast(chunk)
                if ensemble is not None:
                    for k in range(K):
                        total[1 + k] += loss_fn(predicted[..., k], targets) * len(chunk)
                    predicted = ensemble.combine(predicted)
                total[0] += loss_fn(predicted, targets) * len(chunk)
        finally:
            if ensemble is not None:
                ensemble.every_member = False
        model.train()
        losses = (distributed.all_sum(total) / max(len(starts), 1)).tolist()
        return losses[0], losses[1:]

    def mean_loss(starts: torch.Tensor) -> float:
        return scores(starts)[0]

    # The starting point is a candidate too: a run that diverges at once keeps its initial weights.
    start_loss, start_members = scores(score_idx)
    best_state = copy.deepcopy(model.state_dict())
    members = MemberBest.start(start_members) if ensemble is not None else None
    result.best_val_loss, result.best_epoch = start_loss, 0
    reference = max(start_loss, 1e-8)
    bad_epochs = 0
    if share.rank > 0:  # masks of its own (dropout); rank 0 goes on with the run's stream
        torch.manual_seed(distributed.rank_seed(config.seed, share.rank))

    running = torch.zeros((), device=device)  # summed training loss of the epoch, on device
    # One flat buffer where every operation is paid for on the host; a CUDA graph already
    # replays the per-tensor kernels at no launch cost, and cuDNN keeps its own weight layout.
    one_dtype = len({p.dtype for p in params}) == 1  # one buffer holds one dtype
    flat = FlatParameters(params) if device.type == "cpu" and one_dtype else None
    # DDP after the flat buffer: its all-reduced gradients land in the buffer's views
    net = distributed.wrap(model, device, use_graph)

    def fresh_optimizer(lr: float) -> torch.optim.Optimizer:
        return make_optimizer(
            params if flat is None else [flat.data], config, capturable=use_graph, lr=lr
        )

    def epoch_runner(optimizer: torch.optim.Optimizer) -> Callable[[torch.Tensor], None]:
        """The epoch loop around `optimizer`'s step (a new graph is captured for a new one)."""
        step = make_step(
            params,
            optimizer,
            lambda starts: window_loss(starts, net),
            running,
            config.clip_norm,
            config.amp,
            flat,
        )
        if use_graph:
            warmup = DDP_GRAPH_WARMUP if distributed.active() else WARMUP_STEPS
            return GraphEpoch(step, config.batch_size, device, share, warmup)
        return EagerEpoch(step, config.batch_size, share)

    lr = config.lr
    optimizer = fresh_optimizer(lr)
    run_epoch = epoch_runner(optimizer)
    retries_left = config.divergence_retries
    recoveries: list[str] = []

    first_epoch, finished = 1, False
    saved = None
    if checkpoint is not None and checkpoint.resume is not False:
        saved = _load_shared(checkpoint, device)
    if saved is not None:  # go on exactly where the saved epoch ended
        c = saved.counters
        model.load_state_dict(saved.model)  # copies into the (flat) parameters in place
        best_state = saved.best
        lr, retries_left, bad_epochs = float(c["lr"]), int(c["retries_left"]), int(c["bad"])
        reference, recoveries = float(c["reference"]), list(c["recoveries"])
        result.best_epoch, result.best_val_loss = int(c["best_epoch"]), float(c["best_val"])
        result.stopped, result.message = str(c["stopped"]), str(c["message"])
        result.history = saved.history
        if members is not None and "member_best" in c:  # (older checkpoints: the mean's)
            members = MemberBest.from_counters(c)
        optimizer = fresh_optimizer(lr)
        optimizer.load_state_dict(saved.optimizer)
        run_epoch = epoch_runner(optimizer)
        shuffler.set_state(saved.rng["shuffler"])
        _set_rng(saved.rng, share.rank, device, config.seed)
        first_epoch, finished = saved.epoch + 1, bool(c["finished"])

    def save(epoch: int, done: bool) -> None:
        if checkpoint is None:
            return
        rng = {"shuffler": shuffler.get_state(), **_rng_states(device)}
        if not distributed.is_leader():
            return
        counters = {
            "lr": lr,
            "retries_left": retries_left,
            "bad": bad_epochs,
            "reference": reference,
            "recoveries": recoveries,
            "best_epoch": result.best_epoch,
            "best_val": result.best_val_loss,
            "stopped": result.stopped,
            "message": result.message,
            "finished": done,
            **(members.counters() if members is not None else {}),
        }
        state = TrainState(
            epoch, model.state_dict(), best_state, optimizer.state_dict(), rng, counters
        )
        state.history = result.history
        checkpoint.save(state)

    def tell(epoch: int, train_loss: float, val_loss: float, kept: bool) -> None:
        event = Epoch(
            epoch,
            config.epochs,
            train_loss,
            val_loss,
            lr,
            result.best_epoch,
            result.best_val_loss,
            kept,
            optimizer,
            model,
        )
        for callback in callbacks:
            callback(event)

    try:
        model.train()
        for epoch in range(first_epoch, config.epochs + 1):
            if finished:
                break
            epoch_started = time.perf_counter()
            order = train_idx[epoch_order(len(train_idx), shuffler).to(device)]
            running.zero_()
            run_epoch(order)
            # every rank decides on the same (all-reduced) losses, so all stop together
            train_loss = float(distributed.all_sum(running)) / len(order)
            diverged = not math.isfinite(train_loss) or train_loss > EXPLODE_FACTOR * reference
            val_loss, member_losses = (math.nan, []) if diverged else scores(score_idx)
            result.history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "lr": lr,
                    "seconds": time.perf_counter() - epoch_started,
                }
            )
            if (diverged or not math.isfinite(val_loss)) and retries_left > 0:
                tell(epoch, train_loss, math.nan, kept=False)
                # undo the epoch: back to the best weights, a fresh optimizer, a smaller step
                retries_left -= 1
                lr *= LR_CUT
                model.load_state_dict(best_state)
                optimizer = fresh_optimizer(lr)
                run_epoch = epoch_runner(optimizer)
                recoveries.append(
                    f"epoch {epoch} diverged (training loss {train_loss:.3g}): restarted from "
                    f"epoch {result.best_epoch}'s weights at lr {lr:.3g}"
                )
                bad_epochs += 1
                if members is not None:
                    members.bad = [b + 1 for b in members.bad]
                save(epoch, done=False)
                continue
            if diverged or not math.isfinite(val_loss):
                tell(epoch, train_loss, math.nan, kept=False)
                result.stopped = "diverged"
                peak = float(series.abs().max())  # the cause is often unscaled data
                result.message = _divergence_message(epoch, train_loss, result, config, peak)
                save(epoch, done=True)
                break
            if members is not None:  # each member its own best epoch and patience
                members.update(epoch, member_losses, model.state_dict(), best_state)
                bad_epochs = min(members.bad)
                if val_loss < result.best_val_loss:  # what callbacks see: the mean's best
                    result.best_val_loss, result.best_epoch = val_loss, epoch
            elif val_loss < result.best_val_loss:
                result.best_val_loss, result.best_epoch = val_loss, epoch
                best_state = copy.deepcopy(model.state_dict())
                bad_epochs = 0
            else:
                bad_epochs += 1
            tell(epoch, train_loss, val_loss, kept=True)
            scheduled = float(optimizer.param_groups[0]["lr"])
            if scheduled != lr:  # a callback set a new learning rate for the next epoch
                lr = scheduled
                if use_graph:  # the captured update holds the old rate
                    run_epoch = epoch_runner(optimizer)
            if config.patience and bad_epochs >= config.patience:
                result.stopped = "early_stopping"
                kept = f"epoch {result.best_epoch}"
                if members is not None:
                    kept = "epochs " + ", ".join(map(str, members.epochs)) + " (one per member)"
                result.message = (
                    f"stopped early after epoch {epoch}: no validation improvement for "
                    f"{config.patience} epochs; kept {kept}"
                )
                save(epoch, done=True)
                break
            save(epoch, done=False)
    finally:
        if flat is not None:
            flat.release()
    if recoveries:
        result.message = "; ".join([*recoveries, result.message] if result.message else recoveries)
    model.load_state_dict(best_state)
    if members is not None:  # the members' best epochs together: score the mean they make
        result.member_best_epochs = list(members.epochs)
        result.best_epoch = max(members.epochs)
        result.best_val_loss = mean_loss(score_idx)
    model.eval()
    result.seconds = round(time.perf_counter() - started, 3)  # what to_dict keeps
    return result


def _ensemble(model: nn.Module) -> Any:
    """The ensemble trained as one model inside `model` (`config.members` > 1), else None."""
    from lstmcast.models import ensemble_of  # the models import the kernels, not the engine

    return ensemble_of(model)


def _load_shared(checkpoint: Checkpoint, device: torch.device) -> TrainState | None:
    """The saved state of `checkpoint`, read by rank 0 and sent to the other ranks (which
    may not see its files: another machine); one process reads it itself."""
    if not distributed.active():
        return checkpoint.load()
    state, failure = None, None
    if distributed.is_leader():
        try:
            state = checkpoint.load()
        except ConfigError as exc:
            failure = exc
    payload = None if failure is not None else b"" if state is None else to_bytes(state)
    received = distributed.broadcast_bytes(payload, device)
    if failure is not None:
        raise failure
    if received is None:
        raise ConfigError(f"rank 0 could not read the checkpoint in {checkpoint.directory}")
    if distributed.is_leader():
        return state
    return from_bytes(received) if received else None


def _rng_states(device: torch.device) -> dict[str, torch.Tensor]:
    """The random-number states to checkpoint: this process's as "torch" (and "cuda"), and
    under DDP every other rank's as "torch.<rank>" ("cuda.<rank>"): ranks draw dropout masks
    from streams of their own. A collective under DDP: every rank calls it."""
    states = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    if not distributed.active():
        return states
    mine = dict(states)
    for name, state in mine.items():
        for r, theirs in enumerate(distributed.all_gather(state, device)):
            if r > 0:
                states[f"{name}.{r}"] = theirs
    return states


def _set_rng(rng: dict[str, torch.Tensor], rank: int, device: torch.device, seed: int) -> None:
    """Restore this rank's random-number states from a checkpoint's (see `_rng_states`); a
    rank the checkpoint has none for (it was saved by fewer processes) starts its own."""
    suffix = "" if rank == 0 else f".{rank}"
    if "torch" + suffix in rng:
        torch.set_rng_state(rng["torch" + suffix])
    else:
        torch.manual_seed(distributed.rank_seed(seed, rank))
    if "cuda" + suffix in rng and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda" + suffix], device)


def _divergence_message(
    epoch: int, loss: float, result: TrainResult, config: RunConfig, peak: float = 0.0
) -> str:
    if not peak < 1e3:  # the scaled series itself is huge: no learning rate fixes that
        return (
            f"training diverged in epoch {epoch} (training loss {loss:.3g}): the model's "
            f"inputs reach {peak:.3g} after scaling (--scaler {config.scaler}); scale the data "
            f"(--scaler standard or robust) or check it for values in the wrong units"
        )
    tips = ["a lower --lr"]
    if config.divergence_retries == 0:
        tips.append("--divergence-retries 2")
    if config.clip_norm == 0:
        tips.insert(0, "--clip-norm 1.0")
    if config.activation != "tanh":
        tips.append("--activation tanh")
    tips.append("a shorter --lookback")
    return (
        f"training diverged in epoch {epoch} (training loss {loss:.3g}); kept the weights of "
        f"epoch {result.best_epoch} (val loss {result.best_val_loss:.4g}). Try {', '.join(tips)}."
    )


def _finite_or_none(value: float) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
