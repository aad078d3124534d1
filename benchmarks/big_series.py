"""Series larger than RAM: peak memory and speed of `lstmcast train --memmap` against the
in-memory path, on seeded synthetic Parquet files of 7 value columns and a time column.

    .venv/bin/python benchmarks/big_series.py --rows 10000000,100000000 --dir /tmp/big

Each measurement runs in its own subprocess (its peak memory is its own): the whole
`train_run` (map or read, scale, train, evaluate the test split, write the run). Peak RSS is
the kernel's high-water mark (`ru_maxrss`), which counts the pages of the mapped files the
process touched; beside it the peaks of its two parts, sampled every 50 ms from
/proc/self/status: RssAnon (the process's own memory) and RssFile (mapped file pages, which
the kernel reclaims under pressure). The in-memory path runs only up to `--memory-rows`.
`--stride` thins the train, validation and test windows of a mapped run; in memory only the
train windows thin (the table says how many validation windows each epoch scores).
windows/s is measured apart, after the run, so that both paths train on the same windows:
the one loop (validation passes included) on the mapped scaled series, or on an in-memory
copy of it, train windows x epochs / `TrainResult.seconds`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, peak_rss_mb, run_in_subprocess

COLUMNS = ("load", "temp", "price", "flow", "wind", "sun", "rain")
GENERATOR_ROWS = 1 << 20


def make_file(path: Path, rows: int, seed: int = 0) -> None:
    """Minutely rows from 1900 (100M minutes end in 2090, inside pandas' range): random walks
    with a daily cycle, float32, written a row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return
    rng = np.random.default_rng(seed)
    level = np.zeros(len(COLUMNS))
    start = np.datetime64("1900-01-01T00:00", "ns")
    partial = path.with_suffix(".partial")
    writer = None
    for a in range(0, rows, GENERATOR_ROWS):
        n = min(GENERATOR_ROWS, rows - a)
        t = np.arange(a, a + n)
        steps = rng.normal(0, 0.05, (n, len(COLUMNS)))
        walk = level + np.cumsum(steps, axis=0)
        level = walk[-1]
        daily = np.sin(2 * np.pi * t / 1440)[:, None] * np.arange(1, len(COLUMNS) + 1)
        values = (walk + daily).astype(np.float32)
        table = pa.table(
            {"time": pa.array(start + t.astype("m8[m]").astype("m8[ns]"))}
            | {name: values[:, k] for k, name in enumerate(COLUMNS)}
        )
        if writer is None:
            writer = pq.ParquetWriter(partial, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    partial.rename(path)


class RssSampler:
    """Peaks of RssAnon and RssFile (MB), sampled from /proc/self/status."""

    def __init__(self, every: float = 0.05) -> None:
        self.peaks = {"RssAnon": 0.0, "RssFile": 0.0}
        self.every = every
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.done.wait(self.every):
            for line in Path("/proc/self/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in self.peaks:
                    self.peaks[key] = max(self.peaks[key], int(value.split()[0]) / 1024)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def speeds(spec: dict[str, Any]) -> dict[str, Any]:
    """`--speed-only K`: the loop's windows/s from the mapping and from memory, alternated K
    times in one process, the best of each (one loop takes a fraction of a second)."""
    import dataclasses

    config = _config(spec)
    best = {"memmap": 0, "memory": 0}
    for _ in range(spec["repeat"]):
        for mode in best:
            got = loop_speed(dataclasses.replace(config, memmap=mode == "memmap"), spec)
            best[mode] = max(best[mode], got)
    return {**spec, **{f"{mode}_windows_per_s": v for mode, v in best.items()}}


def _config(spec: dict[str, Any]) -> Any:
    from lstmcast.config import RunConfig

    return RunConfig(
        model=spec["model"],
        lookback=spec["lookback"],
        horizon=1,
        epochs=spec["epochs"],
        batch_size=spec["batch"],
        stride=spec["stride"],
        patience=0,
        seed=0,
        memmap=spec["mode"] == "memmap",
    )


def one(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["mode"] == "speed":
        return speeds(spec)
    from lstmcast.workflows.fitting import Columns, read_dataset
    from lstmcast.workflows.mapped import map_for
    from lstmcast.workflows.runs import train_run

    config = _config(spec)
    with RssSampler() as sampler:
        began = time.perf_counter()
        if config.memmap:
            data: Any = map_for(config, spec["path"], cache_dir=spec["cache"])
        else:
            data = read_dataset(spec["path"], Columns.of(config))
        read_s = time.perf_counter() - began
        metrics = train_run(data, config, spec["out"])
        total_s = time.perf_counter() - began
    run = json.loads((Path(spec["out"]) / "run.json").read_text())
    peak = peak_rss_mb()  # the run's: the loop timing below maps the file in either mode
    return {
        **spec,
        "read_s": round(read_s, 1),
        "total_s": round(total_s, 1),
        "train_windows": run["n_train_windows"],
        "val_windows_per_epoch": _val_windows(config, data),
        "test_windows": metrics["n_windows"],
        "windows_per_s": loop_speed(config, spec) if spec["speed"] else 0,
        "peak_rss_mb": round(peak),
        "peak_anon_mb": round(sampler.peaks["RssAnon"]),
        "peak_file_mb": round(sampler.peaks["RssFile"]),
    }


def _val_windows(config: Any, data: Any) -> int:
    from lstmcast.data import split_by_fraction, split_windows

    n = len(data) if not hasattr(data, "panel") else len(data.panel)
    split = split_by_fraction(n, config.val_fraction, config.test_fraction)
    stride = config.stride if config.memmap else 1  # in memory only the train windows thin
    return len(split_windows(split, "val", config.lookback_rows, 1, stride))


def loop_speed(config: Any, spec: dict[str, Any]) -> int:
    """Training windows/s of the one loop on the same windows (train and validation every
    `stride`-th), from the mapped scaled series or from an in-memory copy of it: what the
    storage alone changes."""
    import dataclasses

    import torch

    from lstmcast.data import split_by_fraction, split_windows
    from lstmcast.data.mapped import chunked_scaler, scaled_copy
    from lstmcast.workflows.fitting import fit_model
    from lstmcast.workflows.mapped import map_for

    mapped = dataclasses.replace(config, memmap=True)
    table = map_for(mapped, spec["path"], cache_dir=spec["cache"])
    split = split_by_fraction(len(table), config.val_fraction, config.test_fraction)
    L = config.lookback_rows
    windows = (
        split_windows(split, "train", L, 1, config.stride),
        split_windows(split, "val", L, 1, config.stride),
    )
    scaled = scaled_copy(table, chunked_scaler(table.values, split.train, config.scaler))
    series = scaled if config.memmap else np.array(scaled)
    fitted = fit_model(series, len(table.targets), windows, config, torch.device("cpu"))
    done = len(windows[0]) * len(fitted.training.history)
    return round(done / max(fitted.training.seconds, 1e-9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000000,100000000")
    parser.add_argument("--memory-rows", type=int, default=10_000_000)
    parser.add_argument("--dir", default="/tmp/lstmcast-big")
    parser.add_argument("--model", default="simple")
    parser.add_argument("--lookback", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--stride", type=int, default=1000)
    parser.add_argument("--fresh", action="store_true", help="delete the mapped cache first")
    parser.add_argument(
        "--no-speed", action="store_true", help="skip the windows/s measurement (e.g. under a cap)"
    )
    parser.add_argument(
        "--speed-only",
        type=int,
        default=0,
        metavar="K",
        help="only windows/s, mapped and in memory alternated K times, the best of each",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return

    import shutil

    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    cache = directory / "cache"
    if args.fresh:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"# {machine()}")
    print(
        f"# {args.model}, lookback {args.lookback}, batch {args.batch}, {args.epochs} epoch(s), "
        f"stride {args.stride}"
    )
    header = (
        "rows",
        "path",
        "read or map s",
        "total s",
        "train windows",
        "val windows",
        "test windows",
        "windows/s",
        "peak RSS MB",
        "RssAnon MB",
        "RssFile MB",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for rows in [int(r) for r in args.rows.split(",")]:
        path = directory / f"series_{rows}.parquet"
        began = time.perf_counter()
        make_file(path, rows)
        print(
            f"# {path.name}: {path.stat().st_size / 1e9:.2f} GB ({time.perf_counter() - began:.0f} s)"
        )
        if args.speed_only:
            spec = {
                "mode": "speed",
                "repeat": args.speed_only,
                "path": str(path),
                "cache": str(cache),
                "model": args.model,
                "lookback": args.lookback,
                "batch": args.batch,
                "epochs": args.epochs,
                "stride": args.stride,
            }
            got = run_in_subprocess(__file__, spec, timeout=7200)
            print(f"# {rows:,} rows, loop windows/s, best of {args.speed_only}: {json.dumps(got)}")
            continue
        results = {}
        modes = ["memmap", "memmap"] if args.fresh else ["memmap"]  # a build, then a reuse
        if rows <= args.memory_rows:
            modes.append("memory")
        for k, mode in enumerate(modes):
            spec = {
                "mode": mode,
                "rows": rows,
                "path": str(path),
                "cache": str(cache),
                "out": str(directory / f"run_{rows}_{mode}_{k}"),
                "model": args.model,
                "lookback": args.lookback,
                "batch": args.batch,
                "epochs": args.epochs,
                "stride": args.stride,
                "speed": not args.no_speed,
            }
            result = run_in_subprocess(__file__, spec, timeout=7200)
            if "error" in result:
                print(f"| {rows:,} | {mode} | error: {result['error']} |")
                continue
            label = (
                mode
                if mode == "memory"
                else ("memmap (build)" if k == 0 and args.fresh else "memmap")
            )
            results[mode] = result
            print(
                f"| {rows:,} | {label} | {result['read_s']} | {result['total_s']} | "
                f"{result['train_windows']:,} | {result['val_windows_per_epoch']:,} | "
                f"{result['test_windows']:,} | {result['windows_per_s']:,} | "
                f"{result['peak_rss_mb']:,} | {result['peak_anon_mb']:,} | "
                f"{result['peak_file_mb']:,} |",
                flush=True,
            )
        if "memory" in results and "memmap" in results:
            m, r = results["memmap"], results["memory"]
            print(
                f"# {rows:,} rows: memmap / in-memory: peak RSS {m['peak_rss_mb'] / r['peak_rss_mb']:.2f}x, "
                f"windows/s {m['windows_per_s'] / r['windows_per_s']:.2f}x"
            )


if __name__ == "__main__":
    main()
