"""Price levels against log-returns as the training target, on real daily index levels and on
a synthetic multi-ticker panel, each beside repeat_last (the random walk) in level space.

    python benchmarks/market_accuracy.py                     # both studies
    python benchmarks/market_accuracy.py --only indices      # one of: indices, synthetic

- indices: ../shared/data/sp500.csv and nasdaq.csv (daily closes on US trading days,
  1999-2018) as a two-ticker long table, with ../shared/data/core_cpi.csv (monthly, dated by
  the month it measures) as a macro input released 45 days after its date. Validation 2015,
  test 2016-2018. Levels (with --market) against log-returns, with and without the CPI.
- synthetic: `synthetic_prices` (5 tickers x 1500 trading days) with momentum 0.15 (there is
  something to find) and 0 (a pure random walk: there is nothing), levels against
  log-returns; beside it the oracle that knows the generator's AR coefficient.

Every number is from the validation or test split of a run that trained on train only, with
early stopping on validation; nothing is chosen on test. Rows are appended to --json (default
benchmarks/results/market_accuracy.jsonl) with the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import machine

import lstmcast
from lstmcast.datasets.synthetic import synthetic_prices

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def indices_table() -> pd.DataFrame:
    frames = []
    for ticker in ("sp500", "nasdaq"):
        frame = pd.read_csv(SHARED / f"{ticker}.csv")[["Date", "Close"]]
        frames.append(frame.assign(ticker=ticker.upper()))
    return pd.concat(frames, ignore_index=True)


def summary(fc: lstmcast.Forecaster, data: Any) -> dict[str, Any]:
    """Level-space skill against the random walk, U2, hit rates and the illustrative rule."""
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        m = fc.evaluate(data, split=split)
        market = m["market"]
        hits = market["hit_rate"]["per_horizon"][0]
        trade = market["trading"]["per_variable"]
        name = next(iter(trade))
        strategy, hold = trade[name]["strategy"] or {}, trade[name]["buy_and_hold"] or {}
        out[split] = {
            "level_skill": m["skill"],
            "level_mse_scaled": m["model"]["scaled"]["mse"],
            "random_walk_mse_scaled": m["repeat_last"]["scaled"]["mse"],
            "theil_u2": market["theil_u2"]["overall"],
            "hit_rate": hits["model"],
            "always_up": hits["always_up"],
            "majority": hits["majority"],
            "n_steps": hits["n"],
            "strategy_return": strategy.get("cumulative_return"),
            "strategy_sharpe": strategy.get("sharpe_annualised"),
            "buy_hold_return": hold.get("cumulative_return"),
            "buy_hold_sharpe": hold.get("sharpe_annualised"),
            "trained_space_skill": m.get("transformed", {}).get("skill"),
        }
    out["epochs_run"] = len(fc.training_.history)
    out["best_epoch"] = fc.training_.best_epoch
    return out


def fit_row(study: str, variant: str, data: Any, seed: int, **options: Any) -> dict[str, Any]:
    options = {"lookback": 20, "horizon": 1, "market": True, "seed": seed, **options}
    model = options.pop("model")
    fc = lstmcast.Forecaster(model, **options)
    started = time.perf_counter()
    fc.fit(data)
    row = {"study": study, "variant": variant, "model": model, "seed": seed}
    row["fit_seconds"] = time.perf_counter() - started
    row.update(summary(fc, data))
    print(json.dumps({k: row[k] for k in ("study", "variant", "model", "seed")}), file=sys.stderr)
    return row


def indices(seeds: int, epochs: int) -> list[dict[str, Any]]:
    data = indices_table()
    split = {"val_start": "2015-01-01", "test_start": "2016-01-01", "id_col": "ticker"}
    cpi = {"macro": str(SHARED / "core_cpi.csv"), "release_lag": "45D"}
    variants = {
        "levels + CPI": {"transform": "none", **cpi},
        "log-returns + CPI": {"transform": "log-returns", **cpi},
        "log-returns": {"transform": "log-returns"},
    }
    rows = []
    for variant, options in variants.items():
        for model in ("simple", "stacked"):
            for seed in range(seeds):
                rows.append(
                    fit_row(
                        "indices", variant, data, seed, model=model, epochs=epochs,
                        targets=["Close"], **split, **options,
                    )
                )  # fmt: skip
    return rows


def oracle(data: pd.DataFrame, momentum: float) -> dict[str, Any]:
    """The forecast that knows the generator: r_t = momentum * r_{t-1} on the test rows (the
    last 20% of each ticker, as the default split), scored like the model's hit rate."""
    hits, moved = 0, 0
    for _, one in data.groupby("ticker"):
        r = np.diff(np.log(one.close.to_numpy()))
        test = r[int(len(one) * 0.8) :]
        forecast = momentum * r[int(len(one) * 0.8) - 1 : -1]
        hits += int((np.sign(forecast) == np.sign(test)).sum())
        moved += int((test != 0).sum())
    return {"oracle_hit_rate": hits / moved if moved and momentum else None}


def synthetic(seeds: int, epochs: int) -> list[dict[str, Any]]:
    rows = []
    for momentum in (0.15, 0.0):
        data = synthetic_prices(5, 1500, seed=0, momentum=momentum)
        for transform in ("none", "log-returns"):
            for seed in range(seeds):
                row = fit_row(
                    "synthetic", f"momentum {momentum}, {transform}", data, seed,
                    model="simple", epochs=epochs, id_col="ticker", targets=["close"],
                    transform=transform,
                )  # fmt: skip
                rows.append({**row, **oracle(data, momentum)})
    return rows


STUDIES = {"indices": indices, "synthetic": synthetic}


def show(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'study':10} {'variant':26} {'model':8} {'seed':>4} {'skill':>7} {'U2':>6} "
        f"{'hit':>6} {'up':>6} {'maj':>6} {'L/S ret':>8} {'B&H ret':>8} {'L/S Sh':>7} {'B&H Sh':>7}"
    )
    print("test split (level space; skill and U2 against the random walk)")
    print(head)

    def f(x: Any, w: int, p: int = 3) -> str:
        return f"{x:>{w}.{p}f}" if isinstance(x, float) else f"{'-':>{w}}"

    for r in rows:
        t = r["test"]
        print(
            f"{r['study']:10} {r['variant']:26} {r['model']:8} {r['seed']:>4} "
            f"{f(t['level_skill'], 7)} {f(t['theil_u2'], 6)} {f(t['hit_rate'], 6)} "
            f"{f(t['always_up'], 6)} {f(t['majority'], 6)} {f(t['strategy_return'], 8)} "
            f"{f(t['buy_hold_return'], 8)} {f(t['strategy_sharpe'], 7, 2)} "
            f"{f(t['buy_hold_sharpe'], 7, 2)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(STUDIES))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--json", default="benchmarks/results/market_accuracy.jsonl")
    args = parser.parse_args()
    chosen = [args.only] if args.only else list(STUDIES)
    rows = [row for name in chosen for row in STUDIES[name](args.seeds, args.epochs)]
    show(rows)
    stamp = {"machine": machine(), "command": " ".join(sys.argv), "date": time.strftime("%F")}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        for row in rows:
            out.write(json.dumps({**stamp, **row}) + "\n")


if __name__ == "__main__":
    main()
