"""Rolling-origin backtests of the reference presets and seglstm on ETTh1 and exchange_rate:
per-fold skill against repeat_last and the Diebold-Mariano tests.

    python benchmarks/backtest_accuracy.py
    python benchmarks/backtest_accuracy.py --data exchange_rate --models simple

ETTh1: its standard 14,400 rows; exchange_rate: all rows. Lookback 48, horizon 12, 4 folds
over the last 20% of rows, refit every 2 folds (expanding window, early stopping on the last
10% of each training window), at most --epochs epochs. The presets keep their Keras layers
and relu; seglstm runs at a reduced width (hidden 128, segment 12) to fit the 2-core budget.
Rows go to --json with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from common import machine

import lstmcast

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA = {
    "ETTh1": lambda: pd.read_csv(SHARED / "ETTh1.csv").iloc[:14400],
    "exchange_rate": lambda: pd.read_csv(SHARED / "exchange_rate.csv"),
}
MODELS: dict[str, dict[str, Any]] = {
    "simple": {},
    "stacked": {},
    "bidirectional": {},
    "seglstm": {"model_options": {"hidden": 128, "segment": 12}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(DATA), action="append")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", default="benchmarks/results/backtest_accuracy.jsonl")
    args = parser.parse_args()
    for name in args.data or list(DATA):
        frame = DATA[name]()
        for model in args.models.split(","):
            started = time.perf_counter()
            report = lstmcast.backtest(
                frame,
                model,
                folds=4,
                refit="2",
                lookback=48,
                horizon=12,
                epochs=args.epochs,
                batch_size=64,
                **MODELS[model],
            )
            row = {
                "data": name,
                "model": model,
                "seconds": time.perf_counter() - started,
                "fold_skill": [f["skill"] for f in report["folds"]],
                "fold_mse": [f["metrics"]["model"]["scaled"]["mse"] for f in report["folds"]],
                "fold_naive_mse": [
                    f["metrics"]["repeat_last"]["scaled"]["mse"] for f in report["folds"]
                ],
                "skill": report["aggregate"]["skill"],
                "diebold_mariano": {
                    k: {key: v[key] for key in ("statistic", "p_value", "verdict")}
                    for k, v in report["diebold_mariano"].items()
                },
                "n_origins": report["n_origins"],
                "machine": machine(),
                "command": " ".join(sys.argv),
            }
            with open(args.json, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            dm = report["diebold_mariano"]["squared"]
            print(
                f"{name} {model}: fold skill "
                + ", ".join(f"{s:.3f}" for s in row["fold_skill"])
                + f"; DM squared {dm['statistic']:.2f} (p {dm['p_value']:.3g}, "
                f"{dm['verdict']}) ({row['seconds']:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
