"""The two ways an ensemble's forward can run on the CPU, batched over the members or member by
member, timed on one training step (forward, the mean of the members' losses, backward, Adam).
The evidence for the rules that pick one: the table says which form the model picks for each
case, and which was faster.

    python benchmarks/ensemble_paths.py
    python benchmarks/ensemble_paths.py --cases "256,7,96,96,512,24;32,2,28,7,128,7" --members 5
    python benchmarks/ensemble_paths.py --family          # simple, stacked, bidirectional

seglstm (`SegLSTMEnsemble.batched`, the rule `BY_MEMBER_SIZE`): both forms alternate in one
process, best of the repetitions. `--family` (`StackedEnsemble.batched`, the rule
`lstm.AT_ONCE_FLOATS`): each form in its own process (alternating in one, the two forms' large
arrays evicted each other from the C++ layer's block cache and slowed both), the median of the
steps after the first; cases are preset,batch,lookback with 7 features and horizon 1.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

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


FAMILY_CASES = (
    "simple,32,10;stacked,32,10;bidirectional,32,10;simple,1024,10;stacked,1024,10;"
    "simple,512,96;simple,1024,96;stacked,256,96;stacked,512,96;stacked,1024,96;"
    "bidirectional,256,96;bidirectional,512,96;bidirectional,1024,96"
)


def family_step(spec: dict[str, Any]) -> dict[str, Any]:
    """One form of one case of the lstm family, in this process: the median step and the
    form the model would pick."""
    from lstmcast import models
    from lstmcast.models.ensemble import MemberLoss

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    model = models.build(spec["preset"], 7, horizon=1, members=spec["members"])
    x, y = torch.randn(spec["batch"], spec["lookback"], 7), torch.randn(spec["batch"], 1, 7)
    picks = model.structure.runs_members_at_once(x, spec["members"])
    model.batched = spec["at_once"]
    loss = MemberLoss(torch.nn.MSELoss())
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    seconds = []
    for _ in range(6 if spec["batch"] * spec["lookback"] >= 50_000 else 20):
        started = time.perf_counter()
        optimizer.zero_grad()
        loss(model(x), y).backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
    return {"median": sorted(seconds[1:])[len(seconds[1:]) // 2], "picks_at_once": picks}


def family_table(cases: str, members: int, threads: int) -> None:
    from common import run_in_subprocess

    print(f"torch {torch.__version__}, {threads} threads, K = {members}")
    print("| preset | batch | L | saved floats | at once ms | by member ms | faster | picked |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for case in cases.split(";"):
        preset, batch, lookback = case.split(",")
        spec = {"preset": preset, "batch": int(batch), "lookback": int(lookback)}
        spec.update(members=members, threads=threads)
        got = {
            at_once: run_in_subprocess(__file__, {**spec, "at_once": at_once}, timeout=1800)
            for at_once in (True, False)
        }
        if any("error" in g for g in got.values()):
            print(f"| {preset} | {batch} | {lookback} | failed: {got} |")
            continue
        structure = __import__("lstmcast").models.build(preset, 7, horizon=1)
        saved = sum(
            members * int(batch) * int(lookback) * layer.num_directions * 6 * layer.units
            for layer in structure.layers
        )
        once, loop = got[True]["median"], got[False]["median"]
        faster = f"at once {loop / once:.2f}x" if once < loop else f"by member {once / loop:.2f}x"
        picked = "at once" if got[True]["picks_at_once"] else "by member"
        print(
            f"| {preset} | {batch} | {lookback} | {saved / 2**20:.1f}M | {once * 1e3:.1f} | "
            f"{loop * 1e3:.1f} | {faster} | {picked} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases",
        default=CASES,
        help="batch,targets,lookback,horizon,hidden,segment;... (with --family: preset,batch,lookback;...)",
    )
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--family", action="store_true", help="the presets' ensembles instead")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:  # one form of one family case, in a subprocess of --family
        print(json.dumps(family_step(json.loads(args.one))))
        return
    if args.family:
        cases = FAMILY_CASES if args.cases == CASES else args.cases
        family_table(cases, args.members, args.threads)
        return
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
