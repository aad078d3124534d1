"""Training on several processes: PyTorch's DistributedDataParallel under torchrun.

`torchrun` starts one process per rank with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE
and the rendezvous (MASTER_ADDR, MASTER_PORT) in its environment. `session` joins them in one
process group: gloo on the CPU, NCCL on CUDA with one GPU per process (cuda:LOCAL_RANK). The
training loop asks `active()`; while a group is active it trains one model with DDP (see
`lstmcast.engine.training`), every rank on its share of each global batch (`Share`), and
decides early stopping and the divergence guard on all-reduced losses. Only rank 0 writes.

Outside torchrun (no group) every function here answers for one process: rank 0 of 1, and
the collectives return their input.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from lstmcast.errors import ConfigError

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# What DDP needs before a CUDA graph may capture its all-reduce: eager iterations that build
# its buckets (PyTorch's CUDA-graph notes ask for 11).
DDP_GRAPH_WARMUP = 11


def launched() -> bool:
    """True in a process that torchrun (or torch.distributed.run) started."""
    return all(name in os.environ for name in TORCHRUN_ENV)


def active() -> bool:
    """True while a process group is initialised (a DDP run is training)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank: the group's, else torchrun's RANK, else 0."""
    if active():
        return dist.get_rank()
    return int(os.environ.get("RANK", 0)) if launched() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_leader() -> bool:
    """Rank 0: the one process that writes files and prints."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def local_world() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", 1)))


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_rank(environ: dict[str, str] | None = None) -> int:
    """Threads for each of this machine's ranks: OMP_NUM_THREADS when the user set it, else
    the cores shared out among the local ranks. torchrun sets OMP_NUM_THREADS=1 for every
    worker when it is unset, so "1" cannot be told from that default and counts as unset."""
    env = os.environ if environ is None else environ
    given = env.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 1:
        return int(given)
    local = int(env.get("LOCAL_WORLD_SIZE", env.get("WORLD_SIZE", 1)) or 1)
    return max(1, cores() // max(local, 1))


def group_device(name: str) -> torch.device:
    """The device this rank trains on for --device `name`: cuda:LOCAL_RANK for auto (when
    CUDA is here) and cuda, the CPU for cpu (and auto without CUDA). ConfigError for a device
    that no rank can share out (cuda:N, mps) or GPUs fewer than the local ranks."""
    if name.startswith("cuda:"):
        raise ConfigError(
            f"--device {name}: under torchrun each process trains on cuda:LOCAL_RANK; "
            f"use --device cuda (or auto)"
        )
    if name == "mps":
        raise ConfigError("--device mps: distributed training runs on cpu or cuda only")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for but CUDA is not available here; use cpu")
    if local_rank() >= torch.cuda.device_count():
        raise ConfigError(
            f"--device {name}: {local_world()} processes on this machine but "
            f"{torch.cuda.device_count()} GPU(s); start at most one process per GPU"
        )
    return torch.device("cuda", local_rank())


def start(device_name: str) -> torch.device:
    """Join torchrun's process group (env:// rendezvous) for training on `device_name`;
    returns this rank's device. On the CPU it also sets the threads (`threads_per_rank`)."""
    device = group_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        torch.set_num_threads(threads_per_rank())
        dist.init_process_group("gloo")
    return device


def stop(together: bool = True) -> None:
    """Leave the process group; with `together`, once every rank has come here (a barrier).
    A rank that left while another still used the group now and then aborted in gloo's
    teardown at exit (design.md, "DDP ranks leave the process group together"). The collect
    frees the DDP wrapper, which holds the group from reference cycles of the training loop,
    while the interpreter is whole."""
    if not active():
        return
    if together:
        with contextlib.suppress(RuntimeError):  # a rank that failed left: it reports why
            dist.barrier()
    gc.collect()
    dist.destroy_process_group()


@contextlib.contextmanager
def session(device_name: str) -> Iterator[None]:
    """The process group for the block, when torchrun started this process and none is
    active yet; otherwise nothing (a single process, or a group the caller runs). After an
    error the ranks do not wait for each other (the others may never reach the barrier)."""
    if not launched() or active():
        yield
        return
    start(device_name)
    try:
        yield
    except BaseException:
        stop(together=False)
        raise
    stop()


def training_device() -> torch.device:
    """The device of the active group's rank: cuda:LOCAL_RANK under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


# ---------------------------------------------------------------- the loop's collectives
@dataclass(frozen=True)
class Share:
    """This process's part of every global batch when `world` processes train together.

    A batch of n windows is cut as torch.tensor_split cuts it: rank r takes [lo, hi), the
    first n % world ranks one window more. Each rank's mean loss is scaled by
    world * (hi - lo) / n before backward, so that DDP's average of the ranks' gradients is
    the gradient of the global batch's mean loss, for unequal parts too."""

    rank: int = 0
    world: int = 1

    @classmethod
    def of_group(cls) -> Share:
        return cls(rank(), world())

    def bounds(self, n: int) -> tuple[int, int]:
        base, extra = divmod(n, self.world)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    def scale(self, n: int) -> float:
        lo, hi = self.bounds(n)
        return self.world * (hi - lo) / n

    def part(self, starts: torch.Tensor) -> torch.Tensor:
        lo, hi = self.bounds(len(starts))
        return starts[lo:hi]


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` summed over the ranks, in place (as it is for one process)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather(tensor: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    """Every rank's `tensor` (same shape and dtype on each), in rank order, on the CPU;
    moved through `device` (NCCL exchanges GPU tensors only)."""
    if not active():
        return [tensor]
    moved = tensor.to(device)
    parts = [torch.empty_like(moved) for _ in range(world())]
    dist.all_gather(parts, moved)
    return [p.cpu() for p in parts]


def broadcast_bytes(payload: bytes | None, device: torch.device) -> bytes | None:
    """Rank 0's `payload` on every rank (None from rank 0: None everywhere)."""
    if not active():
        return payload
    size = torch.tensor([-1 if payload is None else len(payload)], dtype=torch.long)
    size = size.to(device)
    dist.broadcast(size, 0)
    n = int(size.item())
    if n < 0:
        return None
    if is_leader() and payload is not None:
        data = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(device)
    else:
        data = torch.empty(n, dtype=torch.uint8, device=device)
    if n:
        dist.broadcast(data, 0)
    return bytes(data.cpu().numpy().tobytes())


def leader_says(ok: bool) -> bool:
    """Rank 0's `ok` on every rank (the others' argument is ignored): how the other ranks
    learn that rank 0 could not start (e.g. --out is locked) and stop at once, instead of
    waiting in a collective for a rank that is gone."""
    if not active():
        return ok
    flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=training_device())
    dist.broadcast(flag, 0)
    return bool(flag.item())


def broadcast_module(model: nn.Module) -> None:
    """Rank 0's parameters and buffers into every rank's `model`, in place."""
    if active():
        with torch.no_grad():
            for tensor in model.state_dict().values():
                dist.broadcast(tensor, 0)


def wrap(model: nn.Module, device: torch.device, graphs: bool) -> nn.Module:
    """`model` in DistributedDataParallel while a group is active (else `model` itself).

    Gradients are copied back into the parameters' own .grad tensors after the all-reduce
    (gradient_as_bucket_view off), so the CPU's flat gradient buffer, whose views those are,
    holds the averaged gradient; buffers are not re-sent every step (every rank holds the
    same). With CUDA graphs DDP is built on a side stream, as capture requires."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    # torch >= 2.13 names the switch forward_sync_buffers (broadcast_buffers warns there)
    names = inspect.signature(DistributedDataParallel.__init__).parameters
    no_resend = "forward_sync_buffers" if "forward_sync_buffers" in names else "broadcast_buffers"
    options: dict[str, Any] = {no_resend: False}

    def build() -> nn.Module:
        return DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            gradient_as_bucket_view=False,
            **options,
        )

    if not (graphs and device.type == "cuda"):
        return build()
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        wrapped = build()
    torch.cuda.current_stream(device).wait_stream(side)
    return wrapped


def rank_seed(seed: int, of_rank: int) -> int:
    """The seed of rank `of_rank`'s own random stream (dropout masks) after the model is
    built: rank 0 goes on with the run's stream; the others get streams of their own, so
    that windows of different ranks do not share masks."""
    return (seed * 1_000_003 + of_rank * 7_919) % (2**63)


# ------------------------------------------------------------------ launching from the CLI
def check_launch(nproc: int, device_name: str, batch_size: int) -> None:
    """What `lstmcast train --nproc N` checks before it starts N processes: ConfigError
    (one line) for N < 1, for --nproc inside a torchrun worker, and for a device or batch
    size that N processes cannot share."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be an integer >= 1. Got {nproc} instead.")
    if launched():
        raise ConfigError(
            "--nproc starts torchrun itself; under torchrun leave it out (torchrun's "
            "--nproc-per-node says how many processes)"
        )
    if nproc == 1:
        return
    if device_name.startswith("cuda:") or device_name == "mps":
        raise ConfigError(
            f"--device {device_name} cannot be shared by --nproc {nproc} processes; use "
            f"--device cpu, cuda or auto (each process then trains on cuda:LOCAL_RANK)"
        )
    on_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if on_cuda and nproc > torch.cuda.device_count():
        raise ConfigError(
            f"--nproc {nproc}: this machine has {torch.cuda.device_count()} GPU(s); start at "
            f"most one process per GPU (or train on --device cpu)"
        )
    if batch_size < nproc:
        raise ConfigError(
            f"--batch-size {batch_size} is smaller than --nproc {nproc}; every process "
            f"needs a window of each batch"
        )


def check_one_process(command: str, instead: str) -> None:
    """What the commands that do not train with DDP (compare, backtest, tune) check first:
    ConfigError (one line) when torchrun started more than one process, since each rank would
    run the whole job and write the same --out. `instead` says what to run."""
    if not launched():
        return
    size = os.environ.get("WORLD_SIZE", "").strip()
    if size.isdigit() and int(size) <= 1:
        return
    raise ConfigError(
        f"lstmcast {command} does not run under torchrun (WORLD_SIZE={size}); only `train` "
        f"trains with DDP: {instead}"
    )


def launch(nproc: int, module_args: list[str]) -> int:
    """Run `python -m lstmcast <module_args>` as `nproc` workers of one standalone torchrun
    on this machine (torch.distributed.run, as `torchrun --standalone --nproc-per-node`);
    returns the exit code: 0, or the first failed worker's (130 after Ctrl-C). The workers
    print (rank 0 only); torchrun's own failure report is left out, since rank 0 has said
    what went wrong in one line. OMP_NUM_THREADS, when unset, becomes the cores per worker."""
    import logging

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores() // nproc)))
    # torch's elastic loggers each carry their own level: quiet them one by one
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith(("torch.distributed.elastic", "torch.distributed.run")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = torchrun.parse_args(
        [
            "--standalone",
            "--nnodes=1",
            f"--nproc-per-node={nproc}",
            "--max-restarts=0",
            "-m",
            "lstmcast",
            *module_args,
        ]
    )
    try:
        torchrun.run(args)
    except ChildFailedError as failed:
        failed_rank, first = failed.get_first_failure()
        code = int(first.exitcode)
        if code > 0:  # the rank said why (rank 0 prints for all)
            return code
        # killed by a signal (the OOM killer, an abort): nobody printed a word; say which rank
        print(
            f"lstmcast: worker rank {failed_rank} was killed by {first.signal_name()}",
            file=sys.stderr,
        )
        return 128 - code  # a signal -N exits as 128 + N
    except SignalException:
        return 130
    return 0
