"""Where a small model's CPU training step goes: per-tensor parameters (torch's zero_grad,
clip_grad_norm_ and fused Adam over the parameter list) against lstmcast's one flat buffer
(steps.FlatParameters), phase by phase, in one process, alternating, best of the repetitions.

    python benchmarks/cpu_step.py                 # the reference models at lookback 10
    python benchmarks/cpu_step.py --lookback 96
    python benchmarks/cpu_step.py --lookback 96 --batch 1024 --steps 20
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from lstmcast import models
from lstmcast.config import make_config
from lstmcast.engine.batching import gather_inputs, gather_targets
from lstmcast.engine.steps import FlatParameters
from lstmcast.engine.training import make_optimizer

PHASES = ("gather", "forward", "zero", "backward", "clip", "optimizer")
FEATURES, ROWS = 7, 20_000


def make_runner(
    arch: str, lookback: int, batch: int, flat: bool
) -> Callable[[int], dict[str, float]]:
    torch.manual_seed(0)
    series = torch.randn(ROWS, FEATURES).cumsum(0) / 50
    model = models.build(arch, FEATURES, horizon=1, activation="tanh")
    params = [p for p in model.parameters() if p.requires_grad]
    buffer = FlatParameters(params) if flat else None
    config = make_config({"model": arch, "lookback": lookback})
    optimizer = make_optimizer(params if buffer is None else [buffer.data], config)
    generator = torch.Generator().manual_seed(0)

    def run(steps: int) -> dict[str, float]:
        totals = dict.fromkeys(PHASES, 0.0)
        for _ in range(steps):
            starts = torch.randint(0, ROWS - lookback - 1, (batch,), generator=generator)
            marks = [time.perf_counter()]
            inputs = gather_inputs(series, starts, lookback)
            targets = gather_targets(series, starts, lookback, 1, FEATURES)
            marks.append(time.perf_counter())
            loss = nn.functional.mse_loss(model(inputs), targets)
            marks.append(time.perf_counter())
            if buffer is None:
                optimizer.zero_grad(set_to_none=True)
            else:
                buffer.zero_grad()
            marks.append(time.perf_counter())
            loss.backward()
            marks.append(time.perf_counter())
            if buffer is None:
                nn.utils.clip_grad_norm_(params, config.clip_norm, foreach=True)
            else:
                buffer.clip_(config.clip_norm)
            marks.append(time.perf_counter())
            optimizer.step()
            marks.append(time.perf_counter())
            for phase, start, end in zip(PHASES, marks[:-1], marks[1:], strict=True):
                totals[phase] += end - start
        return {phase: seconds / steps * 1e6 for phase, seconds in totals.items()}

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archs", default="simple,stacked,bidirectional")
    parser.add_argument("--lookback", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch}, "
        f"lookback {args.lookback}; microseconds per step (best of {args.repeats})"
    )
    print("| arch | parameters | " + " | ".join(PHASES) + " | step | windows/s | x per-tensor |")
    print("|---|---|" + "---:|" * (len(PHASES) + 3))
    for arch in args.archs.split(","):
        runners = {
            mode: make_runner(arch, args.lookback, args.batch, mode == "flat")
            for mode in ("per-tensor", "flat")
        }
        best: dict[str, dict[str, float]] = {}
        for runner in runners.values():
            runner(max(3, args.steps // 5))  # warm-up: optimizer state, the C++ layer's first build
        for _ in range(args.repeats):
            for mode, runner in runners.items():
                phases = runner(args.steps)
                if mode not in best or sum(phases.values()) < sum(best[mode].values()):
                    best[mode] = phases
        reference = sum(best["per-tensor"].values())
        for mode, phases in best.items():
            step = sum(phases.values())
            cells = " | ".join(f"{phases[p]:.0f}" for p in PHASES)
            print(
                f"| {arch} | {mode} | {cells} | {step:.0f} | {args.batch / step * 1e6:,.0f} | "
                f"{reference / step:.2f} |"
            )


if __name__ == "__main__":
    main()
