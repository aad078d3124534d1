"""Do lstmcast's prediction intervals keep their promised coverage on held-out time?

    python benchmarks/intervals.py                      # ETTh1 and exchange_rate, H 24/96, 3 seeds
    python benchmarks/intervals.py --files ETTh1 --horizons 24 --seeds 1 --methods conformal

For each file, horizon, seed and interval method: train the `lstm` model (one layer of 64
tanh units, per-window normalisation) on the first 70% of rows with early stopping on the next
10%, calibrate on those validation windows, and score the 80% and 95% intervals on the last
20% (every test window): coverage overall and its range over horizon steps, mean width,
interval score against repeat_last's own conformal band, and the time calibration took
against the time of `fit`. Nothing is chosen on the test rows. Rows are cached as JSON lines
(`--cache`), so an interrupted run resumes; `--markdown` prints the tables for docs/.

Methods: conformal, quantile, cqr, and the adaptive variants `aci` (conformal) and `cqr-aci`
(`adaptive_gamma` 0.005: each level moves with the misses of test windows whose outcomes are
known at the origin, Gibbs & Candes 2021). `ens-conformal` and `ens-spread` train a 5-member
seglstm ensemble instead (`--ensemble 5`, hidden 128, the other sizes from the data) and
calibrate it with conformal or with spread (the residuals scaled by the members' spread); the
two fits are the same model (same seed), so the rows compare the two bands on one forecast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import commit, machine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {"ETTh1": SHARED / "ETTh1.csv", "exchange_rate": SHARED / "exchange_rate.csv"}
LEVELS = (0.8, 0.95)
GAMMA = 0.005
ADAPTIVE = {"aci": "conformal", "cqr-aci": "cqr"}  # benchmark name -> interval method
ENSEMBLE = {"ens-conformal": "conformal", "ens-spread": "spread"}  # on a seglstm ensemble


def run(name: str, horizon: int, seed: int, method: str, epochs: int) -> dict[str, Any]:
    import lstmcast
    from lstmcast.workflows import calibration

    options = dict(
        lookback=96,
        horizon=horizon,
        layers=(64,),
        activation="tanh",
        model_options={"revin": True},
        epochs=epochs,
        patience=3,
        batch_size=128,
        seed=seed,
        device="cpu",
        intervals=LEVELS,
        interval_method=ADAPTIVE.get(method, method),
        adaptive_gamma=GAMMA if method in ADAPTIVE else 0.0,
        val_fraction=0.1,
        test_fraction=0.2,
    )
    model = "lstm"
    if method in ENSEMBLE:
        model = "seglstm"
        for key in ("layers", "activation"):
            options.pop(key)
        options.update(ensemble=5, model_options={"hidden": 128}, interval_method=ENSEMBLE[method])
    started = time.perf_counter()
    fc = lstmcast.Forecaster(model, **options).fit(str(FILES[name]))
    fit_seconds = time.perf_counter() - started
    forecasts, series = fc.backtest(str(FILES[name]), "test")
    metrics = fc.report(forecasts, "test")

    # the calibration's own cost: the same call fit made, timed alone
    state = fc.state_
    values = np.asarray(series.values)
    scaled = state.scaler.transform_rows(values, np.zeros(len(values), dtype=int))
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32))
    from lstmcast.data import split_windows

    val_starts = split_windows(fc.split_, "val", fc.config.lookback, horizon)
    started = time.perf_counter()
    calibration.calibrate(
        state.model, tensor, scaled, val_starts, series.n_targets, fc.config, state.layout
    )
    calibration_seconds = time.perf_counter() - started

    report = metrics["intervals"]
    row: dict[str, Any] = {
        "file": name,
        "horizon": horizon,
        "seed": seed,
        "method": method,
        "mse": metrics["model"]["scaled"]["mse"],
        "naive_mse": metrics["repeat_last"]["scaled"]["mse"],
        "skill": metrics["skill"],
        "fit_seconds": fit_seconds,
        "calibration_seconds": calibration_seconds,
        "n_test_windows": metrics["n_windows"],
        "levels": {},
    }
    for key, section in report["model"]["scaled"].items():
        steps = [
            report["model"]["per_horizon"][s][key]["coverage"]
            for s in report["model"]["per_horizon"]
        ]
        row["levels"][key] = {
            "coverage": section["coverage"],
            "coverage_min_step": min(steps),
            "coverage_max_step": max(steps),
            "width": section["width"],
            "interval_score": section["interval_score"],
            "naive_coverage": report["repeat_last"]["scaled"][key]["coverage"],
            "naive_interval_score": report["repeat_last"]["scaled"][key]["interval_score"],
        }
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| file | H | method | seeds | skill | level | coverage | coverage per step | "
        "interval score / naive | calibration / fit time |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["file"], row["horizon"], row["method"]), []).append(row)
    methods = ("conformal", "aci", "quantile", "cqr", "cqr-aci", *ENSEMBLE)
    order = {m: k for k, m in enumerate(methods)}
    for (file, horizon, method), group in sorted(
        groups.items(), key=lambda item: (item[0][0], item[0][1], order.get(item[0][2], 9))
    ):
        for key in group[0]["levels"]:
            cov = [g["levels"][key]["coverage"] for g in group]
            lo = min(g["levels"][key]["coverage_min_step"] for g in group)
            hi = max(g["levels"][key]["coverage_max_step"] for g in group)
            ratio = [
                g["levels"][key]["interval_score"] / g["levels"][key]["naive_interval_score"]
                for g in group
            ]
            share = [g["calibration_seconds"] / g["fit_seconds"] for g in group]
            skill = [g["skill"] for g in group]
            lines.append(
                f"| {file} | {horizon} | {method} | {len(group)} | {np.mean(skill):.3f} | {key} | "
                f"{np.mean(cov):.3f} ± {np.std(cov):.3f} | {lo:.3f}-{hi:.3f} | "
                f"{np.mean(ratio):.3f} | {100 * np.mean(share):.1f}% |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", default="ETTh1,exchange_rate")
    parser.add_argument("--horizons", default="24,96")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default="conformal,aci,quantile,cqr")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cache", default="benchmarks/results/intervals.jsonl")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    cache = Path(args.cache)
    rows = [json.loads(line) for line in cache.read_text().splitlines()] if cache.is_file() else []
    done = {(r["file"], r["horizon"], r["seed"], r["method"]) for r in rows}
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    for name in args.files.split(","):
        for horizon in (int(h) for h in args.horizons.split(",")):
            for seed in range(args.seeds):
                for method in args.methods.split(","):
                    if (name, horizon, seed, method) in done:
                        continue
                    row = run(name, horizon, seed, method, args.epochs)
                    row.update(
                        machine=machine(),
                        commit=commit(),
                        date=dt.date.today().isoformat(),
                        command="python " + " ".join(sys.argv),
                    )
                    rows.append(row)
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    with cache.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    print(
                        f"{name} H={horizon} seed {seed} {method}: skill {row['skill']:.3f} "
                        + " ".join(
                            f"{k} cov {v['coverage']:.3f} IS/naive "
                            f"{v['interval_score'] / v['naive_interval_score']:.3f}"
                            for k, v in row["levels"].items()
                        )
                        + f" ({row['fit_seconds']:.0f} s)",
                        flush=True,
                    )
    if args.markdown:
        print(markdown(rows))


if __name__ == "__main__":
    main()
