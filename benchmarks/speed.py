"""Training speed and peak memory: lstmcast against the peers, on the same data, in one run.

    python benchmarks/speed.py                  # full table (CPU here, or CUDA when present)
    python benchmarks/speed.py --quick          # lookback 10, batch 32 only
    python benchmarks/speed.py --memory-rows 10000000   # + the 10M-row peak-RSS check
    python benchmarks/speed.py --batches 32 --repeat 2  # each cell's best of two passes

Each measurement runs in its own subprocess (so peak RSS belongs to it alone): build the
model, train one warm-up epoch, then time TIMED_EPOCHS full epochs over all training windows
and keep the fastest (shared machines are noisy; every framework is treated alike).
Throughput is training windows per second. Peers: a plain PyTorch DataLoader loop, a
Lightning Trainer loop (the engine under Darts and NeuralForecast), and, when installed,
Darts BlockRNNModel and the reference Keras models. Ratios are against lstmcast (tanh) in the
same run, the only fair comparison on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

ROWS, FEATURES = 20_000, 7
TIMED_EPOCHS = 3
EPOCHS = 1 + TIMED_EPOCHS
ARCHS = ("simple", "stacked", "bidirectional")


def synthetic_series(rows: int = ROWS, features: int = FEATURES, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None]
    walk = np.cumsum(rng.normal(0, 0.1, (rows, features)), axis=0)
    season = np.sin(2 * np.pi * t / 24 + np.arange(features))
    values = walk + season
    return ((values - values.mean(0)) / values.std(0)).astype(np.float32)


# The LSTM layers of each architecture as (inputs, units, directions), F = FEATURES inputs.
LAYERS = {
    "simple": [(FEATURES, 50, 1)],
    "stacked": [(FEATURES, 64, 1), (64, 32, 1)],
    "bidirectional": [(FEATURES, 50, 2)],
}


def lstm_flops_per_window(arch: str, lookback: int) -> float:
    """The LSTM work of one training window, in FLOPs: per layer and direction the forward
    pass's products, 2 * L * 4U * (I + U), and twice that for the backward pass (the gradient of
    the state and those of the kernels). Gate arithmetic, the head, the loss and the optimizer
    are not counted: this is the work a matmul-bound layer could not avoid."""
    return sum(3 * 2 * lookback * 4 * u * (i + u) * d for i, u, d in LAYERS[arch])


def matmul_gflops(size: int = 1024, seconds: float = 2.0) -> float:
    """This machine's float32 matmul rate (torch, its default threads), best of repeated
    (size x size) @ (size x size) products over about `seconds`."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best, started = float("inf"), time.perf_counter()
    while time.perf_counter() - started < seconds:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- lstmcast
def run_lstmcast(arch: str, lookback: int, batch: int, activation: str, device: str) -> float:
    import torch

    from lstmcast import models
    from lstmcast.config import make_config
    from lstmcast.data import window_starts
    from lstmcast.engine.training import resolve_device, train

    dev = resolve_device(device)
    series = torch.from_numpy(synthetic_series()).to(dev)
    starts = window_starts(0, 0, ROWS, lookback, 1)
    torch.manual_seed(0)
    model = models.build(arch, FEATURES, horizon=1, activation=activation).to(dev)
    config = make_config(
        {
            "model": arch,
            "lookback": lookback,
            "horizon": 1,
            "batch_size": batch,
            "epochs": EPOCHS,
            "patience": 0,
            # speed does not depend on the learning rate, but the divergence guard stops a run
            # early (relu at lookback 96 overflows at 1e-3 on this data), leaving no timed epoch
            "lr": 1e-4,
            "device": device,
        }
    )
    # a handful of validation windows: the timed epochs are (almost) pure training
    result = train(model, series, starts, starts[:batch], config, n_targets=FEATURES)
    if len(result.history) < 2:
        raise RuntimeError(f"training stopped before a timed epoch: {result.message}")
    return len(starts) / min(row["seconds"] for row in result.history[1:])


# ------------------------------------------------------------------- plain PyTorch peers
def torch_model(arch: str, features: int):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if arch == "simple":
                self.lstms = nn.ModuleList([nn.LSTM(features, 50, batch_first=True)])
                out = 50
            elif arch == "stacked":
                self.lstms = nn.ModuleList(
                    [nn.LSTM(features, 64, batch_first=True), nn.LSTM(64, 32, batch_first=True)]
                )
                out = 32
            else:
                self.lstms = nn.ModuleList(
                    [nn.LSTM(features, 50, batch_first=True, bidirectional=True)]
                )
                out = 100
            self.drop = nn.Dropout(0.2 if arch == "stacked" else 0.0)
            self.head = nn.Linear(out, features)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for lstm in self.lstms:
                x, (h, _) = lstm(x)
                x = self.drop(x)
            last = torch.cat([h[0], h[1]], dim=1) if arch == "bidirectional" else x[:, -1]
            return self.head(last)

    return Net()


def window_dataset(series: np.ndarray, lookback: int):
    import torch
    from torch.utils.data import Dataset

    class Windows(Dataset):
        """What tutorials do: slice one window per __getitem__."""

        def __len__(self) -> int:
            return len(series) - lookback

        def __getitem__(self, i: int):
            return torch.from_numpy(series[i : i + lookback]), torch.from_numpy(
                series[i + lookback]
            )

    return Windows()


def run_dataloader(arch: str, lookback: int, batch: int, device: str) -> float:
    import torch
    from torch.utils.data import DataLoader

    dev = torch.device("cuda" if device == "cuda" else "cpu")
    torch.manual_seed(0)
    data = window_dataset(synthetic_series(), lookback)
    loader = DataLoader(data, batch_size=batch, shuffle=True)
    model = torch_model(arch, FEATURES).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    times = []
    for _ in range(EPOCHS):
        started = time.perf_counter()
        for x, y in loader:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return len(data) / min(times[1:])


def epoch_timer() -> Any:
    """A Lightning callback recording each training epoch's seconds in `.times`."""
    import lightning as L

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.started, self.times = 0.0, []

        def on_train_epoch_start(self, *_: Any) -> None:
            self.started = time.perf_counter()

        def on_train_epoch_end(self, *_: Any) -> None:
            self.times.append(time.perf_counter() - self.started)

    return Timer()


def run_lightning(arch: str, lookback: int, batch: int, device: str) -> float:
    import lightning as L
    import torch
    from torch.utils.data import DataLoader

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch_model(arch, FEATURES)

        def training_step(self, batch_data, _index):
            x, y = batch_data
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("loss", loss, prog_bar=False)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    torch.manual_seed(0)
    data = window_dataset(synthetic_series(), lookback)
    timer = epoch_timer()
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(Module(), DataLoader(data, batch_size=batch, shuffle=True))
    return len(data) / min(timer.times[1:])


def run_darts(arch: str, lookback: int, batch: int, device: str) -> float:
    from darts import TimeSeries
    from darts.models import BlockRNNModel

    hidden, layers = {"simple": (50, 1), "stacked": (64, 2), "bidirectional": (50, 1)}[arch]
    if arch == "bidirectional":
        raise RuntimeError("Darts BlockRNNModel has no bidirectional option")
    timer = epoch_timer()
    series = TimeSeries.from_values(synthetic_series())
    model = BlockRNNModel(
        model="LSTM",
        input_chunk_length=lookback,
        output_chunk_length=1,
        hidden_dim=hidden,
        n_rnn_layers=layers,
        dropout=0.2 if arch == "stacked" else 0.0,
        batch_size=batch,
        n_epochs=EPOCHS,
        random_state=0,
        pl_trainer_kwargs={
            "accelerator": "gpu" if device == "cuda" else "cpu",
            "callbacks": [timer],
            "enable_progress_bar": False,
        },
    )
    model.fit(series, verbose=False)
    return (ROWS - lookback) / min(timer.times[1:])


def run_keras(arch: str, lookback: int, batch: int, device: str) -> float:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from keras import layers

    series = synthetic_series()
    windows = np.lib.stride_tricks.sliding_window_view(series[:-1], lookback, axis=0)
    x = np.ascontiguousarray(windows.transpose(0, 2, 1))
    y = series[lookback:]
    model = keras.Sequential([keras.Input((lookback, FEATURES))])
    if arch == "simple":
        model.add(layers.LSTM(50))
    elif arch == "stacked":
        model.add(layers.LSTM(64, return_sequences=True))
        model.add(layers.Dropout(0.2))
        model.add(layers.LSTM(32))
        model.add(layers.Dropout(0.2))
    else:
        model.add(layers.Bidirectional(layers.LSTM(50)))
    model.add(layers.Dense(FEATURES))
    model.compile(optimizer="adam", loss="mse")

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.started, self.times = 0.0, []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.started)

    timer = Timer()
    model.fit(x, y, batch_size=batch, epochs=EPOCHS, verbose=0, callbacks=[timer])
    return len(x) / min(timer.times[1:])


def run_memory(rows: int, lookback: int, batch: int, device: str) -> float:
    """Train lstmcast on a `rows` x 7 series (one epoch over every 100th window)."""
    import torch

    from lstmcast import models
    from lstmcast.config import make_config
    from lstmcast.data import window_starts
    from lstmcast.engine.training import resolve_device, train

    rng = np.random.default_rng(0)
    series = np.cumsum(rng.standard_normal((rows, FEATURES), dtype=np.float32), axis=0)
    series -= series.mean(0)
    series /= series.std(0)
    dev = resolve_device(device)
    tensor = torch.from_numpy(series).to(dev)
    starts = window_starts(0, 0, rows, lookback, 1, stride=100)
    model = models.build("simple", FEATURES, activation="tanh").to(dev)
    config = make_config(
        {"lookback": lookback, "batch_size": batch, "epochs": 1, "patience": 0, "device": device}
    )
    started = time.perf_counter()
    train(model, tensor, starts, starts[:batch], config, n_targets=FEATURES)
    return len(starts) / (time.perf_counter() - started)


RUNNERS = {
    "lstmcast": lambda a, lb, b, d: run_lstmcast(a, lb, b, "tanh", d),
    "lstmcast relu": lambda a, lb, b, d: run_lstmcast(a, lb, b, "relu", d),
    "pytorch DataLoader": run_dataloader,
    "lightning": run_lightning,
    "darts BlockRNN": run_darts,
    "keras": run_keras,
}


def measure_one(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    started = time.perf_counter()
    if spec["framework"] == "memory":
        rate = run_memory(spec["rows"], spec["lookback"], spec["batch"], spec["device"])
    else:
        rate = RUNNERS[spec["framework"]](
            spec["arch"], spec["lookback"], spec["batch"], spec["device"]
        )
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {
        **spec,
        "windows_per_s": rate,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": gpu_mb,
        "seconds": time.perf_counter() - started,
    }


def measure_in_process(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        return measure_one(spec)
    except Exception as exc:  # a peer that cannot run this configuration
        return {**spec, "error": f"{type(exc).__name__}: {exc}"[:120]}


def run_in_subprocess(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timeout after {timeout:.0f}s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1][:120]
        return {**spec, "error": reason}
    return json.loads(lines[-1])


def available(framework: str) -> bool:
    module = {"lightning": "lightning", "darts BlockRNN": "darts", "keras": "tensorflow"}.get(
        framework
    )
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return (
        f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )


def print_table(rows: list[dict[str, Any]], matmul: float | None = None) -> None:
    """The table; with `matmul` (GFLOP/s), each row's LSTM work rate and its share of it."""
    reference = {
        (r["arch"], r["lookback"], r["batch"]): r["windows_per_s"]
        for r in rows
        if r["framework"] == "lstmcast" and "error" not in r
    }
    header = f"| {'arch':<13} | {'L':>3} | {'batch':>5} | {'framework':<18} | {'windows/s':>11} | {'x lstmcast':>10} | {'LSTM GFLOP/s':>12} | {'% of matmul':>11} | {'peak RSS MB':>11} | {'peak GPU MB':>11} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        if r["framework"] == "memory":
            continue
        key = (r["arch"], r["lookback"], r["batch"])
        gflops, share = "-", "-"
        if "error" in r:
            rate, ratio = "-", r["error"][:40]
        else:
            rate = f"{r['windows_per_s']:,.0f}"
            ratio = f"{r['windows_per_s'] / reference[key]:.2f}" if key in reference else "-"
            work = r["windows_per_s"] * lstm_flops_per_window(r["arch"], r["lookback"]) / 1e9
            gflops = f"{work:.1f}"
            share = f"{100 * work / matmul:.0f}%" if matmul else "-"
        rss = f"{r.get('peak_rss_mb', 0):,.0f}" if "error" not in r else "-"
        gpu = f"{r['peak_gpu_mb']:,.0f}" if r.get("peak_gpu_mb") else "-"
        print(
            f"| {r['arch']:<13} | {r['lookback']:>3} | {r['batch']:>5} | {r['framework']:<18} | {rate:>11} | {ratio:>10} | {gflops:>12} | {share:>11} | {rss:>11} | {gpu:>11} |"
        )
    print_targets(rows)
    for r in rows:
        if r["framework"] == "memory":
            detail = (
                r.get("error")
                or f"peak RSS {r['peak_rss_mb']:,.0f} MB, {r['windows_per_s']:,.0f} windows/s"
            )
            print(
                f"\nmemory: {r['rows']:,} rows x {FEATURES}, lookback {r['lookback']}, batch {r['batch']}: {detail}"
            )


# The speed targets per cell: lstmcast (tanh, and relu) against each peer.
TARGETS = {"darts BlockRNN": 2.0, "keras": 1.5}


def print_targets(rows: list[dict[str, Any]]) -> None:
    """Per cell, lstmcast's ratio to each peer of TARGETS (tanh and relu) and relu/tanh."""
    rate = {
        (r["arch"], r["lookback"], r["batch"], r["framework"]): r["windows_per_s"]
        for r in rows
        if "error" not in r and r["framework"] != "memory"
    }
    cells = sorted({k[:3] for k in rate}, key=lambda k: (ARCHS.index(k[0]), k[1], k[2]))
    lines, missed = [], 0
    for cell in cells:
        ours = {
            a: rate.get((*cell, f)) for a, f in (("tanh", "lstmcast"), ("relu", "lstmcast relu"))
        }
        parts = []
        for peer, target in TARGETS.items():
            theirs = rate.get((*cell, peer))
            for activation, value in ours.items():
                if value is None or theirs is None:
                    continue
                ratio = value / theirs
                missed += ratio < target
                mark = "" if ratio >= target else " MISSED"
                parts.append(f"{activation} vs {peer} {ratio:.2f}x (>= {target}){mark}")
        if ours["tanh"] and ours["relu"]:
            parts.append(f"relu/tanh {ours['relu'] / ours['tanh']:.2f}")
        if parts:
            lines.append(f"  {cell[0]} L={cell[1]} B={cell[2]}: " + "; ".join(parts))
    if lines:
        print(f"\ntargets ({missed} missed):")
        print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="lookback 10, batch 32 only")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--lookbacks", default="10,96")
    parser.add_argument("--batches", default="32,1024")
    parser.add_argument("--frameworks", default=",".join(RUNNERS))
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the whole matrix N times and keep each cell's fastest run (on a noisy shared "
        "machine every framework then gets the same N chances, in interleaved order)",
    )
    parser.add_argument(
        "--memory-rows", type=int, default=0, help="also run the big-series RSS check"
    )
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="one process for all measurements (faster; peak RSS is then cumulative, peak GPU "
        "memory is still per measurement)",
    )
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one))))
        return
    import torch

    device = (
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    lookbacks = [10] if args.quick else [int(v) for v in args.lookbacks.split(",")]
    batches = [32] if args.quick else [int(v) for v in args.batches.split(",")]
    frameworks = [f for f in args.frameworks.split(",") if available(f)]
    print(
        f"machine: {machine()}; data {ROWS:,} x {FEATURES}, horizon 1; device {device}", flush=True
    )
    matmul = matmul_gflops() if device == "cpu" else None
    if matmul:
        print(f"float32 matmul 1024x1024, this machine now: {matmul:.1f} GFLOP/s", flush=True)
    for arch in args.archs.split(","):
        flops = ", ".join(
            f"L={lookback} {lstm_flops_per_window(arch, lookback) / 1e6:.2f}"
            for lookback in lookbacks
        )
        print(f"LSTM MFLOP per training window, {arch}: {flops}", flush=True)
    specs = [
        {
            "framework": framework,
            "arch": arch,
            "lookback": lookback,
            "batch": batch,
            "device": device,
        }
        for arch in args.archs.split(",")
        for lookback in lookbacks
        for batch in batches
        for framework in frameworks
    ]
    best: dict[int, dict[str, Any]] = {}
    for repetition in range(args.repeat):
        for i, spec in enumerate(specs):
            if "error" in best.get(i, {}):
                continue  # a framework that cannot run this cell will not on the next pass
            row = (
                measure_in_process(spec)
                if args.in_process
                else run_in_subprocess(spec, args.timeout)
            )
            if i not in best or row.get("windows_per_s", 0) > best[i].get("windows_per_s", 0):
                best[i] = row
            shown = row.get("error") or f"{row['windows_per_s']:,.0f} windows/s"
            print(
                f"  [{repetition + 1}/{args.repeat}] {spec['framework']:<18} {spec['arch']:<13} "
                f"L={spec['lookback']:<3} B={spec['batch']:<5} {shown}",
                file=sys.stderr,
                flush=True,
            )
    rows = [best[i] for i in range(len(specs))]
    if args.memory_rows:
        spec = {
            "framework": "memory",
            "arch": "simple",
            "rows": args.memory_rows,
            "lookback": 96,
            "batch": 1024,
            "device": device,
        }
        rows.append(run_in_subprocess(spec, args.timeout * 3))
    if matmul:  # and again after the matrix: the machine's own rate may drift during the run
        after = matmul_gflops()
        print(f"float32 matmul 1024x1024 after the matrix: {after:.1f} GFLOP/s")
        matmul = max(matmul, after)
    print_table(rows, matmul)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"machine": machine(), "matmul_gflops": matmul, "rows": rows}, handle, indent=1
            )


if __name__ == "__main__":
    main()
