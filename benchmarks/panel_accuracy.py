"""Accuracy of global models on long tables, and of a known-future calendar, beside the naive
forecast of each series, on validation and test.

    python benchmarks/panel_accuracy.py                 # all three studies
    python benchmarks/panel_accuracy.py --only stocks   # one of: stocks, ett-long, calendar

- stocks: ../shared/data/stocks_monthly.csv, a real long table (5 tickers, unequal lengths):
  one global `lstm` with `--id-col symbol` against each ticker's repeat_last.
- ett-long: ETTh1's 7 columns as 7 series of one long table (id = the column): one global
  univariate `lstm` against each series' repeat_last (and mean).
- calendar: ETTh1 hourly (wide, all 7 variables): `--calendar auto` (known in advance)
  against no calendar, same seeds.
- promo: the synthetic panel (50 series x 400 rows) with its promotion flag as a known-future
  covariate against without it.

Every number is from the validation or test split of the run that trained on train only;
nothing is selected on test. Rows are appended to --json (default
benchmarks/results/panel_accuracy.jsonl) with the machine and the command.
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


def summary(fc: lstmcast.Forecaster, data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        m = fc.evaluate(data, split=split)
        row = {
            "model_mse": m["model"]["scaled"]["mse"],
            "model_mae": m["model"]["scaled"]["mae"],
            "repeat_last_mse": m["repeat_last"]["scaled"]["mse"],
            "repeat_last_mae": m["repeat_last"]["scaled"]["mae"],
            "skill": m["skill"],
        }
        if "per_series" in m:
            row["per_series_skill"] = {k: v["skill"] for k, v in m["per_series"].items()}
            row["series_beaten"] = sum(v["beats_naive"] for v in m["per_series"].values())
            row["n_series"] = len(m["per_series"])
        out[split] = row
    out["epochs_run"] = len(fc.training_.history)
    out["best_epoch"] = fc.training_.best_epoch
    return out


def stocks(seeds: int, epochs: int) -> list[dict[str, Any]]:
    rows = []
    for variant in ("lstm", "lstm revin", "mean"):
        model = variant.split()[0]
        lstm: dict[str, Any] = {"id_embedding": 3} if model == "lstm" else {}
        if variant.endswith("revin"):  # each window on its own level: prices wander
            lstm["model_options"] = {"revin": True}
        for seed in range(seeds if model == "lstm" else 1):
            fc = lstmcast.Forecaster(
                model, lookback=12, horizon=1, id_col="symbol", seed=seed, epochs=epochs, **lstm
            )
            started = time.perf_counter()
            fc.fit(SHARED / "stocks_monthly.csv")
            rows.append(
                {
                    "study": "stocks",
                    "model": variant,
                    "seed": seed,
                    "lookback": 12,
                    "horizon": 1,
                    "fit_seconds": time.perf_counter() - started,
                    **summary(fc, SHARED / "stocks_monthly.csv"),
                }
            )
    return rows


def ett_long() -> pd.DataFrame:
    wide = pd.read_csv(SHARED / "ETTh1.csv").iloc[:14400]  # the standard protocol's rows
    return wide.melt(id_vars="date", var_name="series", value_name="value")


def ett_long_study(seeds: int, epochs: int) -> list[dict[str, Any]]:
    frame = ett_long()
    rows = []
    for model in ("lstm", "mean"):
        for seed in range(seeds if model == "lstm" else 1):
            lstm: dict[str, Any] = {"layers": (64,), "id_embedding": 4} if model == "lstm" else {}
            fc = lstmcast.Forecaster(
                model,
                lookback=48,
                horizon=24,
                id_col="series",
                seed=seed,
                epochs=epochs,
                batch_size=256,
                stride=4,
                **lstm,
            )
            started = time.perf_counter()
            fc.fit(frame)
            rows.append(
                {
                    "study": "ett-long",
                    "model": model,
                    "seed": seed,
                    "lookback": 48,
                    "horizon": 24,
                    "fit_seconds": time.perf_counter() - started,
                    **summary(fc, frame),
                }
            )
    return rows


def calendar_study(seeds: int, epochs: int) -> list[dict[str, Any]]:
    data = pd.read_csv(SHARED / "ETTh1.csv").iloc[:14400]
    rows = []
    for calendar in ("none", "auto"):
        for seed in range(seeds):
            fc = lstmcast.Forecaster(
                "lstm",
                lookback=48,
                horizon=24,
                calendar=calendar,
                seed=seed,
                epochs=epochs,
                batch_size=128,
                layers=(64,),
            )
            started = time.perf_counter()
            fc.fit(data)
            rows.append(
                {
                    "study": "calendar",
                    "model": "lstm",
                    "calendar": calendar,
                    "features": list(fc.state_.inputs.calendar),
                    "seed": seed,
                    "lookback": 48,
                    "horizon": 24,
                    "fit_seconds": time.perf_counter() - started,
                    **summary(fc, data),
                }
            )
    return rows


def promo_study(seeds: int, epochs: int) -> list[dict[str, Any]]:
    """A known-future input that carries what the past does not: the synthetic panel's
    promotion flag, as a known-future covariate against none."""
    from lstmcast.datasets.synthetic import synthetic_panel

    frame = synthetic_panel(50, 400, seed=0)
    rows = []
    for future in ((), ("promo",)):
        for seed in range(seeds):
            fc = lstmcast.Forecaster(
                "lstm",
                lookback=24,
                horizon=6,
                id_col="id",
                targets=["sales"],
                future_covariates=future,
                seed=seed,
                epochs=epochs,
                batch_size=128,
                layers=(32,),
            )
            started = time.perf_counter()
            fc.fit(frame)
            rows.append(
                {
                    "study": "promo",
                    "model": "lstm",
                    "calendar": "promo known" if future else "no promo",
                    "seed": seed,
                    "lookback": 24,
                    "horizon": 6,
                    "fit_seconds": time.perf_counter() - started,
                    **summary(fc, frame),
                }
            )
    return rows


STUDIES = {
    "stocks": stocks,
    "ett-long": ett_long_study,
    "calendar": calendar_study,
    "promo": promo_study,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(STUDIES), default=None)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--json", type=str, default="benchmarks/results/panel_accuracy.jsonl")
    args = parser.parse_args()
    names = [args.only] if args.only else list(STUDIES)
    command = " ".join(sys.argv)
    for name in names:
        for row in STUDIES[name](args.seeds, args.epochs):
            row |= {"machine": machine(), "command": command}
            with open(args.json, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            tag = row.get("calendar", row["model"])
            print(
                f"{name} {tag} seed {row['seed']}: val skill {row['val']['skill']:.3f}, "
                f"test skill {row['test']['skill']:.3f}, test MSE {row['test']['model_mse']:.4f}"
                f" vs repeat_last {row['test']['repeat_last_mse']:.4f}"
                + (
                    f", beats naive on {row['test']['series_beaten']}/{row['test']['n_series']}"
                    " series"
                    if "series_beaten" in row["test"]
                    else ""
                )
                + f" ({row['fit_seconds']:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
