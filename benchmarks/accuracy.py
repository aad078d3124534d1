"""Accuracy on the standard long-horizon benchmark, beside published results.

    python benchmarks/accuracy.py                       # the full table (long: use a GPU)
    python benchmarks/accuracy.py --datasets ETTh1 --models seglstm,mean --horizons 96 \
        --lookbacks 96 --seeds 1

Every finished run is appended to a JSON-lines cache (default runs/accuracy.jsonl) and skipped
when asked for again, so an interrupted table resumes where it stopped. After the runs, the
results section of docs/accuracy.md (between the `results` markers) is rewritten from the
whole cache, with the rows of ../shared/benchmarks/published.csv beside ours; the text
around the markers is kept. `--report-only` rewrites the report without running anything.

Each run also saves its training state after every epoch under `--checkpoints` (one directory
per row, removed once the row is cached), so a run stopped part-way (a CPU session's time
limit) goes on from its last epoch when the same command runs again, to the same result.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from common import commit, write_section

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATASETS = {  # name -> protocol
    "ETTh1": "ett-hourly",
    "ETTm1": "ett-minute",
    "exchange_rate": "ratio",
}
ENSEMBLE = "seglstm@ens5"  # 5 seglstm members trained as one model (--ensemble 5)
MODELS = (
    "repeat_last",
    "mean",
    "linear",
    "simple",
    "stacked",
    "bidirectional",
    "seglstm",
    ENSEMBLE,
)


def model_and_options(name: str) -> tuple[str, dict[str, Any]]:
    """The library's model name behind a table name, and the options that name adds."""
    return ("seglstm", {"ensemble": 5}) if name == ENSEMBLE else (name, {})


START, END = "<!-- results:start -->", "<!-- results:end -->"


def machine(device: str) -> str:
    """GPU name, or CPU model and core count."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


# Architecture options that change what a row measures: rows differing in them are kept apart
# in the cache and the tables (e.g. the presets before and after the benchmark's revin/tanh).
SETTINGS = ("revin", "activation")


def settings(options: dict[str, Any]) -> str:
    return ", ".join(
        "revin" if key == "revin" and value is True else str(value)
        for key, value in sorted(options.items())
        if key in SETTINGS and value not in (None, False)
    )


def key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["dataset"],
        row["model"],
        row["horizon"],
        row["lookback"],
        row["seed"],
        row.get("epochs_cap"),
        settings(row.get("options", {})),
    )


def run_seconds(row: dict[str, Any]) -> float:
    """A run's training time: a resumed run's is the sum of its epochs, whichever process
    trained them (train_seconds is only the last process's share)."""
    return float(row["epoch_seconds"] if row.get("resumed_after_epoch") else row["train_seconds"])


def resumed(row: dict[str, Any]) -> str:
    after = row.get("resumed_after_epoch")
    return f", resumed after epoch {after}" if after else ""


def read_cache(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(args: argparse.Namespace, cache: Path) -> None:
    import torch

    from lstmcast.workflows.benchmark import ARCHITECTURE, load_protocol, run_one

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    done = {key(row) for row in read_cache(cache)}
    command = "python " + " ".join(sys.argv)
    for dataset in args.datasets:
        data = load_protocol(Path(args.data_dir) / f"{dataset}.csv", DATASETS[dataset])
        for lookback in args.lookbacks:
            for name in args.models:
                for horizon in args.horizons:
                    for seed in range(args.seeds):
                        wanted = {
                            "dataset": dataset,
                            "model": name,
                            "horizon": horizon,
                            "lookback": lookback,
                            "seed": seed,
                            "epochs_cap": args.epochs,
                            "options": ARCHITECTURE.get(model_and_options(name)[0], {}),
                        }
                        if key(wanted) in done:
                            continue
                        model, options = model_and_options(name)
                        if args.epochs:
                            options["epochs"] = args.epochs
                        state = args.checkpoints / "-".join(
                            str(part) for part in key(wanted) if part not in (None, "")
                        ).replace(" ", "").replace(",", "+")
                        row = run_one(
                            data,
                            model,
                            horizon,
                            lookback,
                            seed,
                            device=args.device,
                            options=options,
                            checkpoint=state,
                        )
                        row.update(  # the table's name: seglstm@ens5, not seglstm
                            {k: v for k, v in wanted.items() if k != "options"},
                            machine=machine(row["device"]),
                            command=command,
                            date=dt.date.today().isoformat(),
                            commit=commit(),
                        )
                        with cache.open("a") as handle:
                            handle.write(json.dumps(row) + "\n")
                        shutil.rmtree(state, ignore_errors=True)
                        print(
                            f"{dataset} L={lookback} {name} H={horizon} seed {seed}: "
                            f"mse {row['mse']:.4f} mae {row['mae']:.4f} val {row['val_mse']:.4f} "
                            f"({run_seconds(row):.1f} s, {row['epochs_run']} epochs"
                            f"{resumed(row)})",
                            flush=True,
                        )


def published() -> dict[str, list[dict[str, str]]]:
    by_dataset: dict[str, list[dict[str, str]]] = defaultdict(list)
    path = SHARED / "benchmarks" / "published.csv"
    if path.is_file():
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                by_dataset[row["dataset"]].append(row)
    return by_dataset


def cell(values: list[float], digits: int = 3) -> str:
    if not values:
        return ""
    mean = float(np.mean(values))
    return f"{mean:.{digits}f}" + (f" ± {np.std(values):.{digits}f}" if len(values) > 1 else "")


def report(rows: list[dict[str, Any]], horizons: list[int]) -> str:
    """Markdown tables: one per dataset, ours then the published rows."""
    lines: list[str] = []
    pub = published()
    machines = sorted({f"{r['machine']} ({r['device']})" for r in rows})
    commands = sorted({r["command"] for r in rows})
    dates = sorted({r["date"] for r in rows})
    lines += ["Generated by `benchmarks/accuracy.py` from its cache; commands:", ""]
    lines += [f"    {c}" for c in commands]
    lines += ["", f"Machines: {'; '.join(machines)}. Dates: {', '.join(dates)}.", ""]
    lines += [
        "Cells: test MSE (± std over seeds) / test MAE (v validation MSE, what choices were "
        "made on), z-scale, full test set; s/run = train seconds per run.",
        "",
    ]
    for dataset in DATASETS:
        ours = [r for r in rows if r["dataset"] == dataset]
        if not ours:
            continue
        hs = [h for h in horizons if any(r["horizon"] == h for r in ours)]
        lines += [f"### {dataset}", ""]
        lines.append(
            "| model | L | epochs | " + " | ".join(f"H={h}" for h in hs) + " | s/run | seeds |"
        )
        lines.append("|---|---|---|" + "---|" * len(hs) + "---|---|")
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for r in ours:
            model = r["model"]
            if settings(r.get("options", {})):
                model += f" [{settings(r['options'])}]"
            groups[(model, r["lookback"], r.get("epochs_cap"), r["device"])].append(r)
        order = {m: i for i, m in enumerate(MODELS)}
        for (model, lookback, cap, device), group in sorted(
            groups.items(),
            key=lambda g: (order.get(g[0][0].split(" ")[0], 99), g[0][1], str(g[0][2:])),
        ):
            cells = []
            for h in hs:
                at = [r for r in group if r["horizon"] == h]
                if not at:
                    cells.append("")
                    continue
                mae, val = np.mean([r["mae"] for r in at]), np.mean([r["val_mse"] for r in at])
                cells.append(f"{cell([r['mse'] for r in at])} / {mae:.3f} (v {val:.3f})")
            seconds = cell([run_seconds(r) for r in group], 1).split(" ")[0]
            seeds = len({r["seed"] for r in group})
            epochs = f"≤{cap}" if cap else "default"
            lines.append(
                f"| {model} ({device}) | {lookback} | {epochs} | "
                + " | ".join(cells)
                + f" | {seconds} | {seeds} |"
            )
        published_rows = pub.get(dataset, [])
        if published_rows:
            lines += [
                "",
                f"Published ({dataset}; `test_set=drop_last` rows cover fewer windows):",
                "",
                "| model | L | test set | " + " | ".join(f"H={h}" for h in hs) + " |",
                "|---|---|---|" + "---|" * len(hs),
            ]
            named: dict[tuple[str, str, str], dict[int, str]] = defaultdict(dict)
            for p in published_rows:
                mae = f" / {p['mae']}" if p["mae"] else ""
                named[(p["model"], p["lookback"], p["test_set"])][int(p["horizon"])] = (
                    f"{p['mse']}{mae}"
                )
            for (model, lookback, test_set), values in named.items():
                lines.append(
                    f"| {model} | {lookback} | {test_set} | "
                    + " | ".join(values.get(h, "") for h in hs)
                    + " |"
                )
        lines.append("")
    return "\n".join(lines)


def write_report(path: Path, body: str) -> None:
    write_section(path, body, START, END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])

    def names(text: str) -> list[str]:
        return [t.strip() for t in text.split(",") if t.strip()]

    def ints(text: str) -> list[int]:
        return [int(t) for t in names(text)]

    parser.add_argument("--datasets", type=names, default=list(DATASETS))
    parser.add_argument("--models", type=names, default=list(MODELS))
    parser.add_argument("--horizons", type=ints, default=[96, 192, 336, 720])
    parser.add_argument("--lookbacks", type=ints, default=[96, 336])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--epochs", type=int, default=None, help="cap every model's epochs")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=str(SHARED / "data"))
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "accuracy.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "accuracy.md")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--checkpoints",
        type=Path,
        default=ROOT / "runs" / "accuracy-checkpoints",
        help="where unfinished runs keep their state (one directory per row)",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        parser.error(f"unknown dataset {unknown[0]}; known: {', '.join(DATASETS)}")
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        run(args, args.cache)
    rows = read_cache(args.cache)
    if rows:
        write_report(args.out, report(rows, [96, 192, 336, 720]))
        print(f"wrote {args.out} from {len(rows)} runs in {args.cache}")


if __name__ == "__main__":
    main()
