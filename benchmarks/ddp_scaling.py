"""Scaling of DDP training: the same model, data and global batch on one process and on
several (DistributedDataParallel under torchrun, see lstmcast.engine.distributed).

    python benchmarks/ddp_scaling.py            # CPU: 1 process x 2 threads vs 2 x 1
    python benchmarks/ddp_scaling.py --quick    # a tiny size, to check that it runs
    python benchmarks/ddp_scaling.py --model stacked --lookback 96 --batch 256 --rows 50000

On the CPU it compares 1 process x T threads with P processes x T/P threads (gloo), T the
cores by default (--threads, --procs). With CUDA it also compares 1 GPU with every visible GPU
(NCCL, one process each, the CUDA-graph step on), and DDP on one GPU with plain training on
it, whose "graph" column says whether the step was captured as a CUDA graph under DDP.

Each measurement runs in its own process (or torchrun): build the model, train one warm-up
epoch, then TIMED epochs over every training window; the fastest epoch counts. Throughput is
training windows per second, the epoch's short validation pass included (VAL windows). Every
configuration uses the same global batch, so the ranks split each batch and the result is
the same model within float tolerance; the ratio is against the first row of its table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from typing import Any

import numpy as np

VAL = 256  # validation windows per epoch (kept small: the benchmark times training)
TIMED = 3


def synthetic(rows: int, features: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(rows)[:, None]
    walk = np.cumsum(rng.normal(0, 0.1, (rows, features)), axis=0)
    series = np.sin(2 * np.pi * t / 24 + np.arange(features)) + walk
    # standardised, as lstmcast's runs scale their inputs: the relu presets stay stable on it
    return ((series - series.mean(0)) / series.std(0)).astype(np.float32)


def one(spec: dict[str, Any]) -> None:
    """One measurement (in this process, or in each of torchrun's); rank 0 prints JSON."""
    import warnings

    import torch

    from lstmcast import models
    from lstmcast.config import make_config
    from lstmcast.engine import distributed
    from lstmcast.engine.training import resolve_device, train

    if distributed.launched():
        distributed.start(spec["device"])
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])
    rows, features, lookback, horizon = spec["rows"], spec["features"], spec["lookback"], 1
    config = make_config(
        {
            "model": spec["model"],
            "lookback": lookback,
            "horizon": horizon,
            "epochs": 1 + spec["timed"],
            "batch_size": spec["batch"],
            "patience": 0,
            "device": spec["device"],
            "cuda_graph": spec["graph"],
        }
    )
    model = models.build_for_run(config, features, features).to(device)
    series = torch.from_numpy(synthetic(rows, features)).to(device)
    n = rows - lookback - horizon + 1
    starts = np.arange(n)
    train_starts, val_starts = starts[: n - VAL], starts[n - VAL :]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(model, series, train_starts, val_starts, config, n_targets=features)
    failed = [str(w.message) for w in caught if "CUDA graph capture failed" in str(w.message)]
    seconds = min(h["seconds"] for h in result.history[1:])
    if distributed.is_leader():
        line = {
            **spec,
            "processes": distributed.world(),
            "torch_threads": torch.get_num_threads(),
            "windows_per_s": len(train_starts) / seconds,
            "final_train_loss": result.history[-1]["train_loss"],
            "graph": (failed[0][:80] if failed else "captured") if device.type == "cuda" else "-",
        }
        print(json.dumps(line), flush=True)
    distributed.stop()


def measure(spec: dict[str, Any], procs: int, timeout: float) -> dict[str, Any]:
    """Run `one(spec)` in a subprocess: plain for procs 0, else under torchrun (procs)."""
    here = os.path.abspath(__file__)
    if procs:
        head = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command = [*head, f"--nproc-per-node={procs}", here]
    else:
        command = [sys.executable, here]
    command += ["--one", json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"] or 1)}
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timeout after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        # torchrun ends its stderr with a banner; the worker's own error line is the one to show
        said = [line for line in done.stderr.splitlines() if "Error" in line and "=" not in line]
        tail = (said or done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return {**spec, "error": tail}
    return {**json.loads(lines[-1]), "wall_s": time.perf_counter() - started}


def table(title: str, rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{title}",
        "",
        "| configuration | processes | threads each | windows/s | ratio | graph | train loss |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    base = rows[0].get("windows_per_s") if rows else None
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['label']} | - | - | error: {row['error']} | | | |")
            continue
        ratio = row["windows_per_s"] / base if base else float("nan")
        lines.append(
            f"| {row['label']} | {row['processes']} | {row['torch_threads']} | "
            f"{row['windows_per_s']:,.0f} | {ratio:.2f}x | {row['graph']} | "
            f"{row['final_train_loss']:.5f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="stacked")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=7)
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--batch", type=int, default=256, help="global batch (every config)")
    parser.add_argument("--timed", type=int, default=TIMED, help="timed epochs (best counts)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads in all")
    parser.add_argument("--procs", type=int, default=2, help="CPU processes to compare")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--quick", action="store_true", help="a tiny size: does it run?")
    parser.add_argument("--no-cpu", action="store_true", help="only the GPU table")
    args = parser.parse_args()
    if args.one:
        one(json.loads(args.one))
        return
    if args.quick:
        args.rows, args.lookback, args.batch, args.timed = 1200, 12, 64, 1
    import torch

    base = {
        "model": args.model,
        "rows": args.rows,
        "features": args.features,
        "lookback": args.lookback,
        "batch": args.batch,
        "timed": args.timed,
    }
    print(f"command: {shlex.join(['python', *sys.argv])}")
    print(
        f"machine: {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.cuda.device_count()} GPU(s) "
        f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''}".rstrip()
    )
    print(
        f"model {args.model}, {args.rows} rows x {args.features} features, lookback "
        f"{args.lookback}, global batch {args.batch}, best of {args.timed} epochs\n"
    )
    if not args.no_cpu:
        each = max(1, args.threads // args.procs)
        cpu = {**base, "device": "cpu", "graph": False}
        rows = [
            {
                **measure({**cpu, "threads": args.threads}, 0, args.timeout),
                "label": f"1 process x {args.threads} threads",
            },
            {
                **measure({**cpu, "threads": each}, args.procs, args.timeout),
                "label": f"{args.procs} processes x {each} thread(s) (gloo)",
            },
        ]
        print(table("CPU", rows) + "\n")
    if torch.cuda.is_available():
        gpu = {**base, "device": "cuda", "graph": True, "threads": 0}
        rows = [
            {**measure(gpu, 0, args.timeout), "label": "1 GPU, no DDP"},
            {**measure(gpu, 1, args.timeout), "label": "1 GPU, DDP (NCCL)"},
        ]
        if torch.cuda.device_count() > 1:
            n = torch.cuda.device_count()
            rows.append({**measure(gpu, n, args.timeout), "label": f"{n} GPUs, DDP (NCCL)"})
        eager = {**gpu, "graph": False}
        rows.append({**measure(eager, 1, args.timeout), "label": "1 GPU, DDP, no CUDA graph"})
        print(table("CUDA", rows))


if __name__ == "__main__":
    main()
