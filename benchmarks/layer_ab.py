"""Two builds of the C++ CPU layer (kernels/cpu_lstm.cpp) in one process: the layer's forward
and backward at the speed matrix's sizes, alternating between the builds, each one's fastest
repetition kept. Finer than `ab_speed.py` (whole training steps in subprocesses) for a change
inside the layer: both builds see the same machine moment by moment.

    git worktree add /tmp/before <commit>
    python benchmarks/layer_ab.py --before /tmp/before --after .

Each checkout's extension is built (or found) by its own `lstmcast.kernels.cpu_lstm.load()`
in a subprocess; this process loads both binaries and points the layer at one, then the other.
Prints, per case, each build's fastest repetition and the median over repetitions of the
before / after ratio of the pair run back to back (above 1: the after build is faster; the
median of pairs is the steadier on a shared VM).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

# (name, inputs, units, bidirectional, return_sequences, batch, lookback): the presets' layers
CASES = [
    ("simple", 7, 50, False, False, 1024, 96),
    ("bidirectional", 7, 50, True, False, 1024, 96),
    ("stacked, first", 7, 64, False, True, 1024, 96),
    ("stacked, second", 64, 32, False, False, 1024, 96),
    ("simple", 7, 50, False, False, 32, 10),
    ("simple", 7, 50, False, False, 1024, 10),
    ("simple", 7, 50, False, False, 32, 96),
]


def built(root: Path) -> ModuleType:
    """The extension that checkout builds, loaded here under its own (hashed) name."""
    code = "from lstmcast.kernels import cpu_lstm; print(cpu_lstm.load().__file__)"
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, check=True, capture_output=True, text=True
    ).stdout
    path = out.strip().splitlines()[-1]
    spec = importlib.util.spec_from_file_location(Path(path).name.split(".")[0], path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=Path("."))
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    from lstmcast.kernels import cpu_lstm
    from lstmcast.kernels.dispatch import Backend
    from lstmcast.models.keras_lstm import KerasLSTM

    builds = {"before": built(args.before.resolve()), "after": built(args.after.resolve())}
    torch.set_num_threads(args.threads)
    print(
        "| layer | batch | L | before ms | after ms | before / after, fastest | median of pairs |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, inputs, units, bidirectional, sequences, batch, lookback in CASES:
        torch.manual_seed(0)
        layer = KerasLSTM(inputs, units, "tanh", bidirectional, sequences)
        # a second layer's input has a gradient to compute; the first's (the data) has none
        x = torch.randn(batch, lookback, inputs, requires_grad=inputs > 7)
        work = batch * lookback * units * (2 if bidirectional else 1)
        calls = max(1, int(2e7 / (4 * work)))
        best = dict.fromkeys(builds, float("inf"))
        ratios = []
        for repetition in range(args.repeat):
            order = list(builds.items())
            if repetition % 2:
                order.reverse()
            seconds = {}
            for side, module in order:
                cpu_lstm.load = lambda module=module: module  # type: ignore[assignment]
                layer.forward_with(Backend.cpp, x).sum().backward()  # warm
                started = time.perf_counter()
                for _ in range(calls):
                    layer.forward_with(Backend.cpp, x).sum().backward()
                seconds[side] = (time.perf_counter() - started) / calls
                best[side] = min(best[side], seconds[side])
            ratios.append(seconds["before"] / seconds["after"])
        before, after = best["before"] * 1e3, best["after"] * 1e3
        print(
            f"| {name} | {batch} | {lookback} | {before:.2f} | {after:.2f} | "
            f"{before / after:.3f} | {statistics.median(ratios):.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
