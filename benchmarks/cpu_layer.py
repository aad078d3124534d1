"""One KerasLSTM layer, forward + backward, on the CPU: lstmcast's C++ layer against nn.LSTM
(oneDNN), in one process, alternating, keeping each one's fastest repetition.

    python benchmarks/cpu_layer.py            # the reference sizes, torch's default threads
    python benchmarks/cpu_layer.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch

from lstmcast.kernels import cpu_lstm
from lstmcast.kernels.dispatch import Backend
from lstmcast.models.keras_lstm import KerasLSTM

# (units, batch, lookback, bidirectional): the reference models' layers at the speed
# benchmark's sizes
CASES = [
    (50, 32, 10, False),
    (50, 32, 96, False),
    (64, 32, 96, False),
    (50, 32, 10, True),
    (50, 32, 96, True),
    (50, 1024, 10, False),
    (50, 1024, 96, False),
]


def seconds_per_call(layer: KerasLSTM, x: torch.Tensor, compiled: bool, calls: int) -> float:
    backend = Backend.cpp if compiled else Backend.nn_lstm
    for _ in range(3):
        layer.forward_with(backend, x).sum().backward()
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(calls):
            layer.forward_with(backend, x).sum().backward()
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if cpu_lstm.load() is None:
        raise SystemExit("the C++ layer did not build here")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; features 7")
    print(
        "| units | batch | L | bidirectional | oneDNN tanh ms | C++ tanh ms | C++ relu ms | oneDNN / C++ |"
    )
    print("|---:|---:|---:|---|---:|---:|---:|---:|")
    for units, batch, lookback, bidirectional in CASES:
        x = torch.randn(batch, lookback, 7)
        calls = max(3, int(3e5 / (batch * lookback)))
        torch.manual_seed(0)
        tanh = KerasLSTM(7, units, "tanh", bidirectional=bidirectional)
        relu = KerasLSTM(7, units, "relu", bidirectional=bidirectional)
        onednn = seconds_per_call(tanh, x, False, calls)
        compiled = seconds_per_call(tanh, x, True, calls)
        compiled_relu = seconds_per_call(relu, x, True, calls)
        print(
            f"| {units} | {batch} | {lookback} | {bidirectional} | {onednn * 1e3:.3f} | "
            f"{compiled * 1e3:.3f} | {compiled_relu * 1e3:.3f} | {onednn / compiled:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
