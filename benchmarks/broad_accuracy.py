"""Accuracy beyond the three long-horizon benchmark files: short daily, weekly, monthly and
quarterly series (a few hundred rows, lookbacks of a few dozen), real and synthetic, every model
at the library's defaults beside the baselines.

    python benchmarks/broad_accuracy.py                          # every series, model, 1 seed
    python benchmarks/broad_accuracy.py --series etth1_daily,syn_ar1_monthly --models seglstm,mean
    python benchmarks/broad_accuracy.py --report-only            # rewrite the report only

Series: real files from ../shared/data (read here, never by the installed package), resampled
and shortened as `REAL` says, and seeded generators from `lstmcast.datasets.synthetic` with
known structure (`SYNTHETIC`). Each series has one lookback (2-3 seasonal periods where the
series allows), two horizons (1 step and a few steps) and a season length for seasonal_naive.

Every model is fitted through the public API with ONLY lookback, horizon, epochs, patience and
seed (seasonal_naive gets `period` too; `seglstm@auto` is seglstm without the lookback, which
the library then chooses from the data; `NAME@ens5` is `--ensemble 5`, `NAME@ens5-median`
adds `--ensemble-reduce median`), so the table
measures the library's defaults; the
default split (70/10/20 %, in time order), standard scaling fitted on train, early stopping on
validation. A model that refuses its options is a row with status "refused" and the one-line
error. Cells are MSE on the train-only z-scale (report["model"]["scaled"]["mse"]).

Every finished (or refused) run is appended to a JSON-lines cache (default
benchmarks/results/broad_accuracy.jsonl) with the machine, date and command, and skipped when
asked for again, so an interrupted table resumes where it stopped. To measure changed defaults
afresh, give another --cache (or move the old one). After the runs, the section of
docs/accuracy.md between the `broad` markers is rewritten from the whole cache; the text
around the markers is kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import commit, write_section

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
AUTO = "seglstm@auto"  # seglstm with the lookback left to the data too (the train default)
ENSEMBLE = "seglstm@ens5"  # 5 seglstm members trained as one model (--ensemble 5)
PRESET_ENSEMBLES = ("simple@ens5", "stacked@ens5", "bidirectional@ens5")  # likewise
# NAME@ensK-median: the kept members' median (--ensemble-reduce median)
MEDIANS = tuple(f"{m}-median" for m in (ENSEMBLE, *PRESET_ENSEMBLES))
LSTMS = (
    "seglstm",
    AUTO,
    ENSEMBLE,
    "simple",
    "stacked",
    "bidirectional",
    "lstm",
    *PRESET_ENSEMBLES,
    *MEDIANS,
)
MODELS = (*LSTMS, "linear", "seasonal_naive", "repeat_last", "mean")
BASELINES = ("linear", "seasonal_naive", "repeat_last", "mean")
COMPARED = ("linear", "seasonal_naive", "repeat_last")  # the "no worse than" column
SHORT = {
    "seasonal_naive": "snaive",
    "repeat_last": "rlast",
    "bidirectional": "bidir",
    "bidirectional@ens5": "bidir@ens5",
}
START, END = "<!-- broad:start -->", "<!-- broad:end -->"
HEADING = "## Beyond the three benchmark files"


@dataclass(frozen=True)
class Series:
    name: str
    freq: str  # a label: daily, business-daily, weekly, monthly, quarterly
    lookback: int
    horizons: tuple[int, int]
    period: int  # seasonal_naive's season length (<= lookback)
    load: Callable[[], pd.DataFrame]
    source: str  # one line: where it comes from and what was done to it
    kind: str = "real"
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------- the real series
def _etth1(rule: str, last: int | None) -> pd.DataFrame:
    raw = pd.read_csv(SHARED / "ETTh1.csv", parse_dates=["date"])
    cols = ["OT", "HUFL", "MUFL", "LUFL"]
    grouped = raw.set_index("date")[cols].resample(rule)
    frame = grouped.mean()[grouped.size() == grouped.size().max()]  # complete periods only
    frame = frame.reset_index()
    return frame.iloc[-last:].reset_index(drop=True) if last else frame


def _exchange(weekly: bool, last: int) -> pd.DataFrame:
    raw = pd.read_csv(SHARED / "exchange_rate.csv")
    raw["date"] = pd.to_datetime(raw["date"], format="%Y/%m/%d %H:%M")
    cols = ["0", "1", "3", "OT"]
    frame = raw.set_index("date")[cols]
    if weekly:
        grouped = frame.resample("W")
        frame = grouped.mean()[grouped.size() == 7]
    frame = frame.reset_index().rename(columns={c: f"x{c}" for c in cols if c != "OT"})
    return frame.iloc[-last:].reset_index(drop=True)


def _core_cpi() -> pd.DataFrame:
    raw = pd.read_csv(SHARED / "core_cpi.csv")
    return pd.DataFrame(
        {"date": pd.to_datetime(raw["Date"], format="%m/%d/%Y"), "cpi": raw["CPILFESL"]}
    )


def _indices(last: int) -> pd.DataFrame:
    closes = []
    for name in ("sp500", "nasdaq"):
        raw = pd.read_csv(SHARED / f"{name}.csv")
        dates = pd.to_datetime(raw["Date"], format="%m/%d/%Y")
        closes.append(pd.Series(raw["Close"].to_numpy(), index=dates, name=name))
    frame = pd.concat(closes, axis=1, join="inner").rename_axis("date").reset_index()
    return frame.iloc[-last:].reset_index(drop=True)


def _stocks(tickers: tuple[str, ...]) -> pd.DataFrame:
    raw = pd.read_csv(SHARED / "stocks_monthly.csv")
    raw["date"] = pd.to_datetime(raw["date"], format="%b %d %Y")
    wide = raw[raw.symbol.isin(tickers)].pivot(index="date", columns="symbol", values="price")
    return wide[list(tickers)].dropna().rename_axis(None, axis=1).reset_index()


REAL = (
    Series("etth1_daily", "daily", 28, (1, 7), 7, lambda: _etth1("D", 700),
           "ETTh1.csv, daily means of OT, HUFL, MUFL, LUFL, last 700 complete days"),
    Series("etth1_weekly", "weekly", 26, (1, 4), 4, lambda: _etth1("W", None),
           "ETTh1.csv, weekly means of OT, HUFL, MUFL, LUFL, complete weeks (season 4: nominal)"),
    Series("exchange_weekly", "weekly", 52, (1, 4), 52, lambda: _exchange(True, 500),
           "exchange_rate.csv, weekly means of columns 0, 1, 3, OT, last 500 complete weeks"),
    Series("exchange_daily", "daily", 28, (1, 7), 7, lambda: _exchange(False, 600),
           "exchange_rate.csv, columns 0, 1, 3, OT, last 600 rows (season 7: nominal)"),
    Series("core_cpi_monthly", "monthly", 24, (1, 6), 12, _core_cpi,
           "core_cpi.csv, the CPILFESL level, all 743 months (1957-2018)"),
    Series("indices_daily", "business-daily", 28, (1, 5), 5, lambda: _indices(500),
           "sp500.csv + nasdaq.csv, Close levels, last 500 trading days (2017-2018)"),
    Series("stocks_monthly", "monthly", 24, (1, 6), 12,
           lambda: _stocks(("MSFT", "IBM", "AAPL")),
           "stocks_monthly.csv, MSFT, IBM, AAPL monthly prices as a wide table (2000-2010)"),
)  # fmt: skip


# -------------------------------------------------------------------- the synthetic series
def _synthetic(name: str, **kwargs: Any) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from lstmcast.datasets import synthetic

        return getattr(synthetic, name)(**kwargs)

    return load


SYNTHETIC = (
    Series("syn_seasonal_low_noise", "daily", 28, (1, 7), 7,
           _synthetic("synthetic_seasonal", n_rows=500, seed=1, freq="D", period=7, noise=0.1,
                      targets=("a", "b")),
           "synthetic_seasonal(500, D, period 7, trend 0.005, noise 0.1), 2 targets", "synthetic"),
    Series("syn_seasonal_high_noise", "daily", 28, (1, 7), 7,
           _synthetic("synthetic_seasonal", n_rows=500, seed=2, freq="D", period=7, noise=1.0,
                      targets=("a", "b")),
           "synthetic_seasonal(500, D, period 7, trend 0.005, noise 1.0), 2 targets", "synthetic"),
    Series("syn_seasonal_weekly", "weekly", 52, (1, 4), 52,
           _synthetic("synthetic_seasonal", n_rows=400, seed=3, freq="W", period=52,
                      trend=0.005, noise=0.3),
           "synthetic_seasonal(400, W, period 52, trend 0.005, noise 0.3)", "synthetic"),
    Series("syn_seasonal_monthly", "monthly", 24, (1, 6), 12,
           _synthetic("synthetic_seasonal", n_rows=240, seed=4, freq="MS", period=12,
                      trend=0.01, noise=0.3),
           "synthetic_seasonal(240, MS, period 12, trend 0.01, noise 0.3)", "synthetic"),
    Series("syn_seasonal_quarterly", "quarterly", 12, (1, 4), 4,
           _synthetic("synthetic_seasonal", n_rows=160, seed=5, freq="QS", period=4,
                      trend=0.02, noise=0.3),
           "synthetic_seasonal(160, QS, period 4, trend 0.02, noise 0.3)", "synthetic"),
    Series("syn_two_seasons_daily", "daily", 28, (1, 7), 7,
           _synthetic("synthetic_two_seasons", n_rows=730, seed=6, freq="D", noise=0.3,
                      targets=("a", "b")),
           "synthetic_two_seasons(730, D, periods 7 and 365.25, amplitudes 1 and 2, noise 0.3), "
           "2 targets", "synthetic"),
    Series("syn_regime_shift_weekly", "weekly", 26, (1, 4), 13,
           _synthetic("synthetic_regime_shift", n_rows=400, seed=7, freq="W"),
           "synthetic_regime_shift(400, W, break at row 200: level +3, slope 0 -> 0.02; AR(1) "
           "0.5 noise 0.3) (season 13: nominal)", "synthetic"),
    Series("syn_random_walk_daily", "daily", 28, (1, 7), 7,
           _synthetic("synthetic_random_walk", n_rows=500, seed=8, freq="D", targets=("a", "b")),
           "synthetic_random_walk(500, D, step 1), 2 targets (season 7: nominal)", "synthetic"),
    Series("syn_ar1_monthly", "monthly", 24, (1, 6), 12,
           _synthetic("synthetic_ar1", n_rows=400, seed=9, freq="MS", phi=0.3),
           "synthetic_ar1(400, MS, phi 0.3, mean 10, noise 1) (season 12: nominal)", "synthetic"),
)  # fmt: skip
SERIES = {s.name: s for s in (*REAL, *SYNTHETIC)}


# ------------------------------------------------------------------------------- the runs
def key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["series"],
        row["model"],
        row["lookback"],
        row["horizon"],
        row["seed"],
        json.dumps(row["options"], sort_keys=True),
    )


def read_cache(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def options_for(series: Series, model: str, horizon: int, seed: int, args: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        **({} if model == AUTO else {"lookback": series.lookback}),
        "horizon": horizon,
        "epochs": args.epochs,
        "patience": args.patience,
        "seed": seed,
    }
    if model == "seasonal_naive":
        options["period"] = series.period
    if "@ens" in model:  # NAME@ensK: --ensemble K; NAME@ensK-median: and their median
        members, _, reduce = model.split("@ens")[1].partition("-")
        options["ensemble"] = int(members)
        if reduce:
            options["ensemble_reduce"] = reduce
    return options


def fit_one(frame: pd.DataFrame, model: str, options: dict[str, Any]) -> dict[str, Any]:
    import lstmcast
    from lstmcast.errors import LstmcastError

    row: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            options = dict(options)
            forecaster = lstmcast.Forecaster(
                model.split("@")[0],
                lookback=options.pop("lookback", None),
                horizon=options.pop("horizon"),
                **options,
            )
            forecaster.fit(frame)
            row["fit_seconds"] = time.perf_counter() - started
            test = forecaster.evaluate(frame, "test")
            val = forecaster.evaluate(frame, "val")
    except LstmcastError as error:
        return {"status": "refused", "error": _one_line(error)}
    except Exception as error:  # recorded, not raised: one failing model must not stop a table
        return {"status": "error", "error": f"{type(error).__name__}: {_one_line(error)}"}
    training = forecaster.training_
    row.update(
        status="ok",
        val_mse=finite(val["model"]["scaled"]["mse"]),
        val_mae=finite(val["model"]["scaled"]["mae"]),
        test_mse=finite(test["model"]["scaled"]["mse"]),
        test_mae=finite(test["model"]["scaled"]["mae"]),
        test_repeat_last_mse=finite(test["repeat_last"]["scaled"]["mse"]),
        test_n=test["model"]["scaled"].get("n"),  # values scored: windows x targets x steps
        val_n=val["model"]["scaled"].get("n"),
        train_windows=forecaster.state_.n_train_windows,
        lookback_used=forecaster.config.lookback,
        derived={c.name: c.value for c in getattr(forecaster, "derived_", [])},
        train_seconds=round(training.seconds, 3),
        best_epoch=training.best_epoch,
        epochs_run=len(training.history),
        stopped=training.stopped,
        stop_message=training.message,
    )
    return row


def finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def run(args: argparse.Namespace) -> None:
    import torch
    from common import machine

    torch.set_num_threads(1)  # another process needs the other core
    done = {key(row) for row in read_cache(args.cache)}
    command = "python " + " ".join(sys.argv)
    stamp = {
        "machine": machine(),
        "command": command,
        "date": dt.date.today().isoformat(),
        "commit": commit(),
    }
    started = time.perf_counter()
    for name in args.series:
        series = SERIES[name]
        frame = series.load()
        targets = [c for c in frame.columns if c != "date"]
        for horizon in series.horizons:
            for model in args.models:
                for seed in range(args.seeds):
                    options = options_for(series, model, horizon, seed, args)
                    wanted = {
                        "series": name,
                        "model": model,
                        "lookback": series.lookback,
                        "horizon": horizon,
                        "seed": seed,
                        "options": options,
                    }
                    if key(wanted) in done:
                        continue
                    row = {
                        **wanted,
                        "kind": series.kind,
                        "freq": series.freq,
                        "n_rows": len(frame),
                        "targets": targets,
                        "period": series.period,
                        "source": series.source,
                        "epochs_cap": args.epochs,
                        "patience": args.patience,
                        **fit_one(frame, model, options),
                        **stamp,
                    }
                    with args.cache.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    done.add(key(wanted))
                    if row["status"] == "ok":
                        said = (
                            f"test {row['test_mse']:.4f} val {row['val_mse']:.4f} "
                            f"({row['train_seconds']:.1f} s, best epoch {row['best_epoch']}, "
                            f"{row['stopped']})"
                        )
                    else:
                        said = f"{row['status']}: {row['error']}"
                    print(
                        f"[{time.perf_counter() - started:6.0f} s] {name} L={series.lookback} "
                        f"H={horizon} {model} seed {seed}: {said}",
                        flush=True,
                    )
    print(f"runs took {time.perf_counter() - started:.0f} s", flush=True)


# ----------------------------------------------------------------------------- the report
def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if value >= 1000 else f"{value:.3g}"


def _table(
    rows: list[dict[str, Any]], metric: str, models: list[str]
) -> tuple[list[str], dict[str, int]]:
    """One markdown row per (series, horizon): the mean over seeds of `metric` per model; the
    best baseline in bold, an LSTM that beats it with `*`, the "no worse" column last."""
    cells: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    refused: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
    info: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        at = (r["series"], r["horizon"])
        info.setdefault(at, r)
        if r["status"] == "ok" and r.get(metric) is not None:
            cells[at][r["model"]].append(r[metric])
        elif r["status"] != "ok":
            refused[at][r["model"]] = r["status"]
    order = {name: i for i, name in enumerate(SERIES)}
    header = ["series", "freq", "rows", "L", "H", *(SHORT.get(m, m) for m in models)]
    header.append("seglstm ≤ best of linear/snaive/rlast")
    lines = ["| " + " | ".join(header) + " |", "|---|---|---:|---:|---:|" + "---:|" * len(models)]
    lines[-1] += "---|"
    tally = {"rows": 0, "no_worse": 0}
    for at in sorted(info, key=lambda a: (order.get(a[0], 99), a[1])):
        r = info[at]
        mean = {m: float(np.mean(v)) for m, v in cells[at].items() if v}
        base = {m: mean[m] for m in BASELINES if m in mean}
        best_base = min(base, key=base.__getitem__) if base else None
        row = [r["series"], r["freq"], str(r["n_rows"]), str(r["lookback"]), str(r["horizon"])]
        for m in models:
            if m in mean:
                text = _fmt(mean[m])
                if m == best_base:
                    text = f"**{text}**"
                elif m in LSTMS and best_base is not None and mean[m] < base[best_base]:
                    text += "\\*"
                row.append(text)
            else:
                row.append(refused[at].get(m, ""))
        compared = [mean[m] for m in COMPARED if m in mean]
        if "seglstm" in mean and compared:
            ratio = mean["seglstm"] / min(compared)
            verdict = "yes" if ratio <= 1 else "no"
            tally["rows"] += 1
            tally["no_worse"] += verdict == "yes"
            row.append(f"{verdict} ({ratio:.3f}x)")
        else:
            row.append(refused[at].get("seglstm", "n/a"))
        lines.append("| " + " | ".join(row) + " |")
    return lines, tally


def _wins(rows: list[dict[str, Any]], metric: str) -> list[str]:
    """Per LSTM model: in how many (series, horizon) rows it beats the best of all four
    baselines, and the median ratio to that best baseline."""
    by: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["status"] == "ok" and r.get(metric) is not None:
            by[(r["series"], r["horizon"])][r["model"]].append(r[metric])
    out = []
    for m in LSTMS:
        ratios = []
        for values in by.values():
            base = [np.mean(values[b]) for b in BASELINES if values.get(b)]
            if values.get(m) and base:
                ratios.append(float(np.mean(values[m])) / min(base))
        if ratios:
            wins = sum(r < 1 for r in ratios)
            out.append(
                f"{m}: beats the best baseline in {wins} of {len(ratios)} rows, "
                f"median ratio {np.median(ratios):.2f}x"
            )
    return out


def report(rows: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    commands = sorted({r["command"] for r in rows})
    machines = sorted({r["machine"] for r in rows})
    dates = sorted({r["date"] for r in rows})
    commits = sorted({r.get("commit", "unknown") for r in rows})
    caps = sorted({(r["epochs_cap"], r["patience"]) for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    present = [m for m in MODELS if any(r["model"] == m for r in rows)]
    lines += ["Generated by `benchmarks/broad_accuracy.py` from its cache; commands:", ""]
    lines += [f"    {c}" for c in commands]
    lines += [
        "",
        f"Machine: {'; '.join(machines)}. Dates: {', '.join(dates)}. Commit of src/: "
        f"{', '.join(commits)}. Epochs ≤ {', '.join(f'{e} (patience {p})' for e, p in caps)}, "
        f"seeds {', '.join(map(str, seeds))} (cells are means over seeds). Every model gets only "
        "lookback, horizon, epochs, patience and seed (seasonal_naive also `period`): the "
        "library's defaults. Default split 70/10/20 % in time order, standard scaling fitted "
        "on train, early stopping on validation.",
        "",
        "Cells: MSE on the train-only z-scale, averaged over targets and horizon steps. "
        "**Bold**: the best of the four baselines (linear, seasonal_naive, repeat_last, mean); "
        "\\*: an LSTM model below that best baseline. Last column: is default seglstm's MSE ≤ "
        "the best of linear, seasonal_naive and repeat_last (ratio seglstm / that best).",
        "",
        "Series (L lookback, H horizons, s season length given to seasonal_naive):",
        "",
        "| series | kind | freq | rows | targets | L | H | s | source |",
        "|---|---|---|---:|---|---:|---|---:|---|",
    ]
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:
        seen.setdefault(r["series"], r)
    order = {name: i for i, name in enumerate(SERIES)}
    for name in sorted(seen, key=lambda n: order.get(n, 99)):
        r = seen[name]
        hs = sorted({x["horizon"] for x in rows if x["series"] == name})
        lines.append(
            f"| {name} | {r['kind']} | {r['freq']} | {r['n_rows']} | {', '.join(r['targets'])} "
            f"| {r['lookback']} | {', '.join(map(str, hs))} | {r['period']} | {r['source']} |"
        )
    for title, metric in (("Test MSE", "test_mse"), ("Validation MSE", "val_mse")):
        table, tally = _table(rows, metric, present)
        lines += ["", f"**{title}** (scaled):", "", *table, ""]
        if tally["rows"]:
            lines.append(
                f"seglstm ≤ the best of linear/seasonal_naive/repeat_last ({title.lower()}): "
                f"{tally['no_worse']} of {tally['rows']} rows."
            )
            lines.append("")
        lines += [f"- {w}" for w in _wins(rows, metric)]
    problems = [r for r in rows if r["status"] != "ok"]
    lines += ["", "Refused or failed runs:", ""]
    if problems:
        for r in problems:
            lines.append(
                f"- {r['series']} L={r['lookback']} H={r['horizon']} {r['model']} "
                f"seed {r['seed']}: {r['status']}: {r['error']}"
            )
    else:
        lines.append("- none")
    lines += ["", "Train seconds per run (mean, 1 torch thread) and epochs:", ""]
    lines += ["| model | s/run | best epoch (median) | early-stopped / completed / other |"]
    lines += ["|---|---:|---:|---|"]
    for m in present:
        ok = [r for r in rows if r["model"] == m and r["status"] == "ok"]
        if not ok:
            continue
        stops = defaultdict(int)
        for r in ok:
            stops[r["stopped"]] += 1
        other = len(ok) - stops["early_stopping"] - stops["completed"]
        lines.append(
            f"| {m} | {np.mean([r['train_seconds'] for r in ok]):.1f} | "
            f"{np.median([r['best_epoch'] for r in ok]):.0f} | "
            f"{stops['early_stopping']} / {stops['completed']} / {other} |"
        )
    return "\n".join(lines)


def write_report(path: Path, body: str) -> None:
    write_section(path, body, START, END, HEADING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])

    def names(text: str) -> list[str]:
        return [t.strip() for t in text.split(",") if t.strip()]

    parser.add_argument("--series", type=names, default=list(SERIES), help="comma-separated")
    parser.add_argument("--models", type=names, default=list(MODELS), help="comma-separated")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument(
        "--cache", type=Path, default=ROOT / "benchmarks" / "results" / "broad_accuracy.jsonl"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "accuracy.md")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    for given, known, what in ((args.series, SERIES, "series"), (args.models, MODELS, "model")):
        unknown = sorted(set(given) - set(known))
        if unknown:
            parser.error(f"unknown {what} {unknown[0]}; known: {', '.join(known)}")
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        run(args)
    rows = read_cache(args.cache)
    if rows:
        write_report(args.out, report(rows))
        print(f"wrote {args.out} from {len(rows)} runs in {args.cache}")


if __name__ == "__main__":
    main()
