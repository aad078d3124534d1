"""CUDA-graph training vs eager training: the same seed must give the same per-epoch losses
(within 1e-4 relative) over >= 50 optimisation steps. Needs a CUDA device.

    python benchmarks/graph_numerics.py
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from lstmcast import models
from lstmcast.config import make_config
from lstmcast.data import window_starts
from lstmcast.engine.training import train


def losses(arch: str, activation: str, graph: bool) -> list[float]:
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=(400, 7)), axis=0).astype(np.float32)
    values = (values - values.mean(0)) / values.std(0)
    series = torch.from_numpy(values).cuda()
    starts = window_starts(0, 0, 340, 10, 1)  # 330 windows: 10 full batches of 32 + 10
    torch.manual_seed(0)
    model = models.build(arch, 7, activation=activation).cuda()
    config = make_config(
        {"model": arch, "epochs": 5, "patience": 0, "cuda_graph": graph, "device": "cuda"}
    )
    result = train(
        model,
        series,
        starts,
        window_starts(0, 340, 400, 10, 1),
        config,
        n_targets=7,
    )
    return [h["train_loss"] for h in result.history]


def main() -> int:
    if not torch.cuda.is_available():
        print("needs CUDA")
        return 1
    print("55 steps per run (5 epochs x 11 batches, the last partial); batch 32, lookback 10")
    print(f"{'model':<28} {'max rel diff':>12}  per-epoch train loss (graph / eager)")
    worst = 0.0
    for arch, activation in [
        ("simple", "tanh"),
        ("simple", "relu"),
        ("bidirectional", "tanh"),
        ("stacked", "tanh"),
        ("stacked", "relu"),
    ]:
        graph, eager = losses(arch, activation, True), losses(arch, activation, False)
        diff = max(abs(g - e) / abs(e) for g, e in zip(graph, eager, strict=True))
        worst = max(worst, diff)  # stacked included: dropout's RNG offsets advance alike
        shown = " ".join(f"{g:.6f}/{e:.6f}" for g, e in zip(graph, eager, strict=True))
        print(f"{arch + ' ' + activation:<28} {diff:>12.2e}  {shown}")
    print(f"worst: {worst:.2e} -> {'OK' if worst < 1e-4 else 'FAIL'}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
