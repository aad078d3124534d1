"""Backtests against Darts' historical_forecasts on the same series, model size and origins.

    .venv-bench/bin/python benchmarks/backtest_speed.py              # make bench's venv
    .venv-bench/bin/python benchmarks/backtest_speed.py --rows 4000  # a quick look

A seeded synthetic series (7 variables, `--rows` rows, hourly); lookback 24, horizon 6, one
LSTM(32) layer, batch 256, `--epochs` epochs per training; the forecast origins are every row
of the last 20% (horizon steps each). Two cases, each measurement in its own subprocess:

- no refit: lstmcast `backtest --refit never --folds 5` against Darts
  `historical_forecasts(retrain=False)` on a model fitted once; the timed part is forecasting
  every origin (lstmcast: the folds' forecast seconds; Darts: the historical_forecasts call),
  the one training is reported beside it;
- refit every fold: lstmcast `--refit every --folds 5` against Darts
  `historical_forecasts(retrain=<origins per fold>)`, which retrains 5 times on the rows up to
  each block; the timed part is the whole backtest, training included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
from common import machine, run_in_subprocess

LOOKBACK, HORIZON, HIDDEN, BATCH, FOLDS, FEATURES = 24, 6, 32, 256, 5, 7
TEST_SHARE = 0.2


def series_values(rows: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(rows)[:, None]
    walk = np.cumsum(rng.normal(0, 0.1, (rows, FEATURES)), axis=0)
    values = walk + np.sin(2 * np.pi * t / 24 + np.arange(FEATURES))
    return ((values - values.mean(0)) / values.std(0)).astype(np.float32)


def origins(rows: int) -> tuple[int, int]:
    """(first forecast target row, number of origins) as lstmcast's test span gives them."""
    test_start = rows - int(rows * TEST_SHARE)
    return test_start, rows - HORIZON - (test_start - 1)


def run_lstmcast(rows: int, epochs: int, refit: str) -> dict[str, Any]:
    import pandas as pd

    import lstmcast

    frame = pd.DataFrame(series_values(rows), columns=[f"v{i}" for i in range(FEATURES)])
    frame.insert(0, "time", pd.date_range("2024-01-01", periods=rows, freq="h"))
    started = time.perf_counter()
    report = lstmcast.backtest(
        frame,
        "lstm",
        folds=FOLDS,
        refit=refit,
        lookback=LOOKBACK,
        horizon=HORIZON,
        layers=(HIDDEN,),
        activation="tanh",
        batch_size=BATCH,
        epochs=epochs,
        patience=0,
        val_fraction=0.0,
        test_fraction=TEST_SHARE,
        device="cpu",
    )
    total = time.perf_counter() - started
    return {
        "n_origins": report["n_origins"],
        "total_seconds": total,
        "forecast_seconds": report["forecast_seconds"],
        "train_seconds": report["train_seconds"],
    }


def run_darts(rows: int, epochs: int, refit: str) -> dict[str, Any]:
    from darts import TimeSeries
    from darts.models import BlockRNNModel

    values = series_values(rows)
    series = TimeSeries.from_values(values)
    test_start, n_origins = origins(rows)

    def model() -> Any:
        return BlockRNNModel(
            model="LSTM",
            input_chunk_length=LOOKBACK,
            output_chunk_length=HORIZON,
            hidden_dim=HIDDEN,
            n_rnn_layers=1,
            batch_size=BATCH,
            n_epochs=epochs,
            random_state=0,
            pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False},
        )

    if refit == "never":
        fitted = model()
        started = time.perf_counter()
        fitted.fit(series[:test_start], verbose=False)
        train = time.perf_counter() - started
        started = time.perf_counter()
        forecasts = fitted.historical_forecasts(
            series,
            start=test_start,
            start_format="position",
            forecast_horizon=HORIZON,
            stride=1,
            retrain=False,
            last_points_only=False,
            verbose=False,
        )
        forecast = time.perf_counter() - started
        return {
            "n_origins": len(forecasts),
            "total_seconds": train + forecast,
            "forecast_seconds": forecast,
            "train_seconds": train,
        }
    per_fold = int(np.ceil(n_origins / FOLDS))
    started = time.perf_counter()
    forecasts = model().historical_forecasts(
        series,
        start=test_start,
        start_format="position",
        forecast_horizon=HORIZON,
        stride=1,
        retrain=per_fold,
        last_points_only=False,
        verbose=False,
    )
    total = time.perf_counter() - started
    return {
        "n_origins": len(forecasts),
        "total_seconds": total,
        "forecast_seconds": None,
        "train_seconds": None,
    }


def measure_one(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    runner = run_darts if spec["framework"] == "darts" else run_lstmcast
    return {**spec, **runner(spec["rows"], spec["epochs"], spec["refit"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", type=str, default=None)
    parser.add_argument(
        "--refits", type=str, default="never,every", help="the cases: never, every or both"
    )
    parser.add_argument("--repeat", type=int, default=1, help="pairs per case, interleaved")
    parser.add_argument("--one", type=str, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(json.loads(args.one))))
        return
    refits = [r for r in ("never", "every") if r in args.refits.split(",")]
    rows = []
    for refit in refits:
        for _ in range(args.repeat):  # lstmcast, Darts, lstmcast, ...: drift hits both alike
            for framework in ("lstmcast", "darts"):
                spec = {
                    "framework": framework,
                    "refit": refit,
                    "rows": args.rows,
                    "epochs": args.epochs,
                }
                rows.append(run_in_subprocess(__file__, spec, args.timeout))
    print(
        f"# {machine()}; {args.rows} rows x {FEATURES}, lookback {LOOKBACK}, horizon "
        f"{HORIZON}, LSTM({HIDDEN}), batch {BATCH}, {args.epochs} epochs, {FOLDS} folds"
    )
    print(f"# command: {' '.join(sys.argv)}")
    print("| case | framework | origins | timed s | train s | x lstmcast (time) |")
    print("|---|---|---:|---:|---:|---:|")
    for refit in refits:
        key = "forecast_seconds" if refit == "never" else "total_seconds"
        # the fastest of the repeats of each framework (a pass of tens of ms is noisy)
        pair = {
            name: min(
                (r for r in rows if r["refit"] == refit and r["framework"] == name),
                key=lambda r: r.get(key) or float("inf"),
            )
            for name in ("lstmcast", "darts")
        }
        ours = pair["lstmcast"].get(key)
        for name, r in pair.items():
            if "error" in r:
                print(f"| refit {refit} | {name} | error: {r['error']} |")
                continue
            ratio = r[key] / ours if ours else float("nan")
            train = f"{r['train_seconds']:.1f}" if r.get("train_seconds") is not None else "-"
            print(
                f"| refit {refit} | {name} | {r['n_origins']:,} | {r[key]:.2f} | {train} | "
                f"{ratio:.1f} |"
            )
    if args.json:
        with open(args.json, "a", encoding="utf-8") as handle:
            for r in rows:
                handle.write(json.dumps({**r, "machine": machine()}) + "\n")


if __name__ == "__main__":
    main()
