"""The two ways a seglstm ensemble's forward can run on the CPU, batched over the members or
member by member (`SegLSTMEnsemble.batched`), timed on one training step (forward, the mean of
the members' L1 losses, backward, Adam) in one process, alternating, best of the repetitions.
The evidence for `seglstm_ensemble.BY_MEMBER_SIZE`: the table says which path `by_member`
picks for each case, and which was faster.

    python benchmarks/ensemble_paths.py
    python benchmarks/ensemble_paths.py --cases "256,7,96,96,512,24;32,2,28,7,128,7" --members 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from lstmcast.models.ensemble import MemberLoss
from lstmcast.models.seglstm import SegLSTMConfig
from lstmcast.models.seglstm_ensemble import SegLSTMEnsemble

# batch, targets, lookback, horizon, hidden, segment: the reference size (ETTh1, hidden 512, batch 256),
# sizes around the rule's threshold, one-segment lookbacks, and small daily series at batch 32
CASES = (
    "256,7,96,96,512,24;128,7,96,96,512,24;256,7,96,96,256,24;256,3,96,96,512,24;"
    "1024,1,48,24,256,12;64,7,96,96,512,24;32,7,96,96,512,24;256,1,60,12,128,12;"
    "32,2,28,7,128,7;32,1,28,7,64,7;256,7,24,24,128,24;256,7,24,24,256,24"
)


def training_step(
    batch: int, targets: int, lookback: int, horizon: int, hidden: int, segment: int, members: int
) -> tuple[SegLSTMEnsemble, torch.Tensor, Callable[[bool], None]]:
    torch.manual_seed(0)
    config = SegLSTMConfig(
        n_features=targets,
        lookback=lookback,
        horizon=horizon,
        hidden=hidden,
        segment=segment,
        members=members,
        dropout=0.1,
    )
    model = SegLSTMEnsemble(config)
    loss = MemberLoss(torch.nn.L1Loss())
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(batch, lookback, targets), torch.randn(batch, horizon, targets)

    def step(batched: bool) -> None:
        model.batched = batched
        optimizer.zero_grad()
        loss(model(x), y).backward()
        optimizer.step()

    return model, x, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", default=CASES, help="batch,targets,lookback,horizon,hidden,segment;..."
    )
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, K = {args.members}")
    print(
        "| batch | T | L | H | hidden | S | B*T*D | batched ms | by member ms | faster | picked |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for case in args.cases.split(";"):
        batch, targets, lookback, horizon, hidden, segment = (int(v) for v in case.split(","))
        model, x, step = training_step(
            batch, targets, lookback, horizon, hidden, segment, args.members
        )
        model.batched = None
        picks = "by member" if model.by_member(x) else "batched"
        repeats = 3 if batch * targets * hidden >= 2**19 else 20
        best = {True: float("inf"), False: float("inf")}
        for _ in range(repeats):
            for batched in (True, False):
                started = time.perf_counter()
                step(batched)
                best[batched] = min(best[batched], time.perf_counter() - started)
        ratio = best[True] / best[False]
        faster = f"by member {ratio:.2f}x" if ratio > 1 else f"batched {1 / ratio:.2f}x"
        print(
            f"| {batch} | {targets} | {lookback} | {horizon} | {hidden} | {segment} | "
            f"{batch * targets * hidden:,} | {best[True] * 1e3:.1f} | {best[False] * 1e3:.1f} | "
            f"{faster} | {picks} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
