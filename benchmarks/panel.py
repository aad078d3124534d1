"""Global models over many series: lstmcast on a long-format panel against the same number of
windows in one wide series, and the same panel through Darts, in one run.

    python benchmarks/panel.py                          # 1,000 series x 2,000 rows
    python benchmarks/panel.py --series 50 --rows 400   # a quick look
    .venv-bench/bin/python benchmarks/panel.py          # with Darts (make bench's venv)

Each measurement runs in its own subprocess, so its peak RSS is its own; the panel is built
inside it (seeded, lstmcast.datasets.synthetic) and handed over as a long DataFrame, the way a
user would. lstmcast: a global `lstm` (tanh) fitted with `--id-col`; throughput is training
windows per second of the fastest epoch after the first (epochs include the validation pass).
The wide run trains the same model on one series holding as many training windows. Darts:
BlockRNNModel (LSTM) fitted on the list of per-series TimeSeries (their training rows),
windows per second of its second epoch. `fit s` is the whole fit call, data handling included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from common import machine, peak_rss_mb, run_in_subprocess

LOOKBACK, HORIZON, HIDDEN, BATCH = 24, 6, 32, 256
TRAIN_SHARE = 0.7  # val 0.1, test 0.2: lstmcast's defaults


def panel_frame(series: int, rows: int) -> Any:
    from lstmcast.datasets.synthetic import synthetic_panel

    return synthetic_panel(series, rows, seed=0, unequal=False)


def lstmcast_options(epochs: int) -> dict[str, Any]:
    return dict(
        lookback=LOOKBACK,
        horizon=HORIZON,
        layers=(HIDDEN,),
        activation="tanh",
        batch_size=BATCH,
        epochs=epochs,
        patience=0,
        targets=["sales"],
        device="cpu",
    )


def run_lstmcast(kind: str, series: int, rows: int, epochs: int) -> dict[str, Any]:
    import pandas as pd

    import lstmcast

    frame = panel_frame(series, rows)
    if kind == "wide":  # one series with as many training windows as the panel has
        per_series = int(rows * TRAIN_SHARE) - LOOKBACK - HORIZON + 1
        wanted = series * per_series
        n = int((wanted + LOOKBACK + HORIZON - 1) / TRAIN_SHARE) + 2
        values = frame["sales"].to_numpy()[:n]
        frame = pd.DataFrame(
            {"time": pd.date_range("2024-01-01", periods=len(values), freq="h"), "sales": values}
        )
        options = {}
    else:
        options = {"id_col": "id"}
    started = time.perf_counter()
    fc = lstmcast.Forecaster("lstm", **lstmcast_options(epochs), **options).fit(frame)
    fit_seconds = time.perf_counter() - started
    history = fc.training_.history
    best = min(row["seconds"] for row in history[1:]) if len(history) > 1 else history[0]["seconds"]
    windows = fc.state_.n_train_windows
    return {
        "framework": f"lstmcast {kind}",
        "series": series if kind == "panel" else 1,
        "train_windows": windows,
        "windows_per_s": windows / best,
        "fit_seconds": fit_seconds,
        "training_seconds": fc.training_.seconds,
    }


def run_darts(series: int, rows: int, epochs: int) -> dict[str, Any]:
    import numpy as np
    from darts import TimeSeries
    from darts.models import BlockRNNModel
    from pytorch_lightning.callbacks import Callback

    class EpochTimer(Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            self.started = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            self.times.append(time.perf_counter() - self.started)

    frame = panel_frame(series, rows)
    started = time.perf_counter()
    train_rows = int(rows * TRAIN_SHARE)
    series_list = [
        TimeSeries.from_values(group["sales"].to_numpy(dtype=np.float32)[:train_rows, None])
        for _, group in frame.groupby("id", sort=False)
    ]
    timer = EpochTimer()
    model = BlockRNNModel(
        model="LSTM",
        input_chunk_length=LOOKBACK,
        output_chunk_length=HORIZON,
        hidden_dim=HIDDEN,
        n_rnn_layers=1,
        batch_size=BATCH,
        n_epochs=epochs,
        random_state=0,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "callbacks": [timer],
            "enable_progress_bar": False,
        },
    )
    model.fit(series_list, verbose=False)
    fit_seconds = time.perf_counter() - started
    windows = series * (train_rows - LOOKBACK - HORIZON + 1)
    best = min(timer.times[1:]) if len(timer.times) > 1 else timer.times[0]
    return {
        "framework": "darts BlockRNN",
        "series": series,
        "train_windows": windows,
        "windows_per_s": windows / best,
        "fit_seconds": fit_seconds,
        "training_seconds": sum(timer.times),
    }


def measure_one(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    if spec["framework"] == "darts":
        result = run_darts(spec["series"], spec["rows"], spec["darts_epochs"])
    else:
        result = run_lstmcast(spec["framework"], spec["series"], spec["rows"], spec["epochs"])
    return {**result, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3, help="lstmcast epochs (first untimed)")
    parser.add_argument("--darts-epochs", type=int, default=2)
    parser.add_argument("--no-darts", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", type=str, default=None, help="also append rows to this file")
    parser.add_argument("--one", type=str, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(json.loads(args.one))))
        return
    import importlib.util

    base = {
        "series": args.series,
        "rows": args.rows,
        "epochs": args.epochs,
        "darts_epochs": args.darts_epochs,
    }
    kinds = ["panel", "wide"]
    if not args.no_darts and importlib.util.find_spec("darts") is not None:
        kinds.append("darts")
    rows = [
        run_in_subprocess(__file__, {**base, "framework": kind}, args.timeout) for kind in kinds
    ]
    print(
        f"# {machine()}; panel {args.series} series x {args.rows} rows, lookback {LOOKBACK}, "
        f"horizon {HORIZON}, LSTM({HIDDEN}), batch {BATCH}"
    )
    print(f"# command: {' '.join(sys.argv)}")
    panel = next((r for r in rows if r["framework"] == "lstmcast panel" and "error" not in r), None)
    print(
        "| framework | series | train windows | windows/s | x lstmcast panel | fit s | "
        "peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['framework']} | error: {r['error']} |")
            continue
        ratio = r["windows_per_s"] / panel["windows_per_s"] if panel else float("nan")
        print(
            f"| {r['framework']} | {r['series']:,} | {r['train_windows']:,} | "
            f"{r['windows_per_s']:,.0f} | {ratio:.2f} | {r['fit_seconds']:.1f} | "
            f"{r['peak_rss_mb']:,.0f} |"
        )
    wide = next((r for r in rows if r["framework"] == "lstmcast wide" and "error" not in r), None)
    if panel and wide:
        print(
            f"panel / wide windows/s: {panel['windows_per_s'] / wide['windows_per_s']:.2f} "
            f"(target >= 0.80); panel peak RSS {panel['peak_rss_mb']:,.0f} MB (target < 1,536)"
        )
    if args.json:
        with open(args.json, "a", encoding="utf-8") as handle:
            for r in rows:
                handle.write(json.dumps({**r, "machine": machine(), **base}) + "\n")


if __name__ == "__main__":
    main()
