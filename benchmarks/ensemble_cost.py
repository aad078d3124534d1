"""What an ensemble of K members trained as one model costs, against one member.

    python benchmarks/ensemble_cost.py                      # ETTh1, L 96, H 96, K 1, 2, 5
    python benchmarks/ensemble_cost.py --members 1,5 --epochs 2 --horizon 96 --json out.jsonl
    python benchmarks/ensemble_cost.py --lookback 24 --horizon 24 --hidden 128 --dropout 0.1
    python benchmarks/ensemble_cost.py --members 1,5 --device cuda --rows 17420   # on a GPU
    python benchmarks/ensemble_cost.py --model simple --lookback 10 --horizon 1 --batch 32
    python benchmarks/ensemble_cost.py --model stacked --form by-member ...   # force a form

The reference size is the benchmark's seglstm on ETTh1 (lookback 96, segment 24, hidden 512,
dropout 0.5, batch 256; the sizes `train` chooses there by itself), on its first `--rows` rows
(the cost per window does not depend on how many there are). Each K trains `--epochs`
epochs on the standard split (no early stopping) in its own subprocess, and the seconds per
epoch (the mean over the epochs after the first, which pays for warm-up) are compared with
K = 1. Prints one line per K and the ratio; `--json` appends the rows to a file. `--model`
another of the family (lstm, the presets) trains it with its own sizes (`--segment`,
`--hidden` and `--dropout` are seglstm's); `--form at-once|by-member` forces how the family's
members run on the CPU (default: the model's rule, `StackedEnsemble.members`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ETTh1.csv"


def one(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    import lstmcast

    torch.set_num_threads(spec["threads"])
    if spec["form"] != "auto":
        from lstmcast.models.ensemble import StackedEnsemble

        StackedEnsemble.batched = spec["form"] == "at-once"
    frame = __import__("pandas").read_csv(spec["data"]).head(spec["rows"])
    seconds: list[float] = []
    last = [time.perf_counter()]

    def tick(epoch: Any) -> None:
        now = time.perf_counter()
        seconds.append(now - last[0])
        last[0] = now

    sizes: dict[str, Any] = {}
    if spec["model"] == "seglstm":
        sizes = {
            "model_options": {"segment": spec["segment"], "hidden": spec["hidden"]},
            "dropout": spec["dropout"],
        }
    forecaster = lstmcast.Forecaster(
        spec["model"],
        lookback=spec["lookback"],
        horizon=spec["horizon"],
        epochs=spec["epochs"],
        patience=0,
        batch_size=spec["batch"],
        ensemble=spec["members"],
        seed=0,
        device=spec["device"],
        **sizes,
    )
    last[0] = time.perf_counter()
    forecaster.fit(frame, callbacks=[tick])
    timed = seconds[1:] or seconds
    return {
        "members": spec["members"],
        "epoch_seconds": sum(timed) / len(timed),
        "epochs_timed": len(timed),
        "train_windows": forecaster.state_.n_train_windows,
        "best_val": forecaster.training_.best_val_loss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="seglstm", help="seglstm, lstm or a preset")
    parser.add_argument("--members", default="1,2,5")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--form", choices=("auto", "at-once", "by-member"), default="auto")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--segment", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=3000, help="the first rows of ETTh1")
    parser.add_argument(
        "--data", type=Path, default=DATA, help="ETTh1.csv (a lent GPU has no ../shared)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(json.loads(args.one))))
        return
    import datetime as dt

    from common import commit, machine, run_in_subprocess

    rows = []
    for k in (int(v) for v in args.members.split(",")):
        spec = {
            "model": args.model,
            "members": k,
            "batch": args.batch,
            "form": args.form,
            "epochs": args.epochs,
            "lookback": args.lookback,
            "horizon": args.horizon,
            "threads": args.threads,
            "rows": args.rows,
            "segment": args.segment,
            "hidden": args.hidden,
            "dropout": args.dropout,
            "device": args.device,
            "data": str(args.data),
        }
        row = {**run_in_subprocess(__file__, spec, timeout=3600), **spec}
        row.update(date=dt.date.today().isoformat(), commit=commit())
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = next((r for r in rows if r.get("members") == 1 and "epoch_seconds" in r), None)
    print(f"machine: {machine()}; command: python {' '.join(sys.argv)}")
    for r in rows:
        if base is not None and "epoch_seconds" in r:
            ratio = r["epoch_seconds"] / base["epoch_seconds"]
            print(
                f"K={r['members']}: {r['epoch_seconds']:.2f} s/epoch, {ratio:.2f}x one member "
                f"({ratio / r['members']:.2f} of K separate fits)"
            )
    if args.json is not None:
        with args.json.open("a") as handle:
            for r in rows:
                handle.write(json.dumps({**r, "machine": machine()}) + "\n")


if __name__ == "__main__":
    main()
