"""lstmcast against itself: two checkouts (e.g. before and after a restructuring), the same
cells of the speed matrix, measured cell by cell in alternating order so that both sides see
the same machine. Each side runs its own `benchmarks/speed.py --one` in a subprocess with its
own `src/` first on the path; each cell keeps its best of `--repeat` passes.

    git worktree add /tmp/before <commit>
    python benchmarks/ab_speed.py --before /tmp/before --after . --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def measure(root: Path, spec: dict[str, object]) -> float | None:
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "speed.py"), "--one", json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root / "src")},
        cwd=root,
    )
    try:
        return float(json.loads(result.stdout.strip().splitlines()[-1])["windows_per_s"])
    except (IndexError, KeyError, ValueError):
        print(f"failed: {root} {spec}: {result.stderr[-400:]}", file=sys.stderr)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=Path("."))
    parser.add_argument("--archs", default="simple,stacked,bidirectional")
    parser.add_argument("--lookbacks", default="10,96")
    parser.add_argument("--batches", default="32,1024")
    parser.add_argument("--frameworks", default="lstmcast", help="lstmcast and/or 'lstmcast relu'")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sides = {"before": args.before.resolve(), "after": args.after.resolve()}
    cells = [
        (arch, int(lookback), int(batch), framework)
        for arch in args.archs.split(",")
        for lookback in args.lookbacks.split(",")
        for batch in args.batches.split(",")
        for framework in args.frameworks.split(",")
    ]
    best: dict[tuple[object, ...], float] = {}
    for repetition in range(args.repeat):
        order = list(sides.items())
        if repetition % 2:
            order.reverse()  # neither side always goes first
        for arch, lookback, batch, framework in cells:
            for side, root in order:
                spec = {
                    "framework": framework,
                    "arch": arch,
                    "lookback": lookback,
                    "batch": batch,
                    "device": "cpu",
                }
                rate = measure(root, spec)
                if rate is None:
                    continue
                key = (arch, lookback, batch, framework, side)
                best[key] = max(best.get(key, 0.0), rate)
                print(
                    f"[{repetition + 1}] {side:6} {framework:13} {arch:13} L={lookback:<3} "
                    f"B={batch:<5} {rate:10,.0f}",
                    file=sys.stderr,
                    flush=True,
                )
    print("| arch | L | batch | framework | before | after | after / before |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for arch, lookback, batch, framework in cells:
        before = best.get((arch, lookback, batch, framework, "before"))
        after = best.get((arch, lookback, batch, framework, "after"))
        if before and after:
            print(
                f"| {arch} | {lookback} | {batch} | {framework} | {before:,.0f} | {after:,.0f} "
                f"| {after / before:.2f} |"
            )


if __name__ == "__main__":
    main()
