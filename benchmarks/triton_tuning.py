"""Launch settings of the Triton LSTM recurrence (warps, batch block) against cuDNN's fused
tanh LSTM, forward + backward of one layer, CUDA-event timed. Needs CUDA.

    python benchmarks/triton_tuning.py
"""

from __future__ import annotations

import torch

from lstmcast.kernels import triton_lstm
from lstmcast.models.keras_lstm import KerasLSTM


def timed(fn, reps: int = 30) -> float:
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps * 1000  # microseconds


def layer_step(layer: torch.nn.Module, x: torch.Tensor):
    def run() -> None:
        layer(x).square().sum().backward()

    return run


def main() -> None:
    shapes = [(32, 10, 1), (32, 96, 1), (1024, 96, 1), (32, 96, 2), (1024, 96, 2)]
    print(
        f"{'B':>5} {'L':>3} {'D':>2} {'cudnn tanh us':>14} {'triton relu us (warps/block_b)':>40}"
    )
    for batch, lookback, directions in shapes:
        x = torch.randn(batch, lookback, 7, device="cuda")
        bi = directions == 2
        tanh = KerasLSTM(7, 50, "tanh", bidirectional=bi).cuda()
        relu = KerasLSTM(7, 50, "relu", bidirectional=bi).cuda()
        base = timed(layer_step(tanh, x))
        results = []
        for warps in (1, 2, 4, 8):
            for block_b in (16, 32):
                triton_lstm.NUM_WARPS, triton_lstm.BLOCK_B = warps, block_b
                results.append(f"{warps}/{block_b}:{timed(layer_step(relu, x)):.0f}")
        print(
            f"{batch:>5} {lookback:>3} {directions:>2} {base:>14.0f}  {' '.join(results)}",
            flush=True,
        )
    triton_lstm.NUM_WARPS, triton_lstm.BLOCK_B = 4, 0
    x = torch.randn(1024, 96, 7, device="cuda")
    relu = KerasLSTM(7, 50, "relu", bidirectional=True).cuda()
    run = layer_step(relu, x)
    run()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            run()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12))


if __name__ == "__main__":
    main()
