"""The standard long-horizon benchmark protocol (the "M" setting of the LTSF papers).

Every variable is an input and a target. Rows are split by fixed row numbers (ETT) or by ratio
(0.7 train, 0.2 test, the rest validation); validation and test windows take their inputs from
the `lookback` rows before their boundary; each column is z-scored with the mean and
population std of the train rows; every window of the split counts (stride 1, no dropped
batch); MSE and MAE are averaged over windows, steps and variables on the z-scale.
See ../shared/benchmarks/README.md for the reference description.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmcast import choices
from lstmcast.config import RunConfig, make_config
from lstmcast.data import (
    Split,
    check_split,
    fit_scaler,
    prepare,
    read_table,
    split_by_rows,
    split_windows,
)
from lstmcast.engine.batching import gather_targets, predict_windows
from lstmcast.engine.checkpoint import Checkpoint
from lstmcast.engine.training import resolve_device
from lstmcast.errors import ConfigError
from lstmcast.models import build_for_run
from lstmcast.workflows.fitting import fingerprint, fit_model

PROTOCOLS = choices.values(choices.Protocol)
ETT_HOURLY = (8640, 11520, 14400)  # 12 / 4 / 4 months of 30 days, hourly
SCORE_CHUNK = 2048  # windows scored at once (bounds host memory at long horizons)

# Training options per model for the benchmark, chosen on VALIDATION loss only (see
# docs/accuracy.md). Models not listed train with lstmcast's defaults (RunConfig).
TRAINING: dict[str, dict[str, Any]] = {
    "seglstm": {"epochs": 30, "batch_size": 256, "lr": 1e-3, "patience": 5, "loss": "mae"},
    # The relu presets at lookback 96 overflow (NaN) in their first epoch at lr 1e-3, with or
    # without clipping; with window normalisation and lr 3e-4 they train (ETTh1@96 validation
    # MSE 0.80 after 3 epochs for `simple`, against 1.15 at the start and 46 without revin).
    **{
        name: {"epochs": 20, "lr": 3e-4, "patience": 5}
        for name in ("simple", "stacked", "bidirectional")
    },
}
# Architecture options per model for the benchmark (same rule: chosen on validation only).
# `revin` normalises each window by its own mean/std. tanh instead of the tutorial's relu:
# over 3 seeds at lookback 96 the relu presets' validation MSE was worse (ETTh1 0.77-1.13
# against 0.77-0.81 for tanh, Exchange 0.15-0.19 against 0.14-0.15), and 4 of 27 relu runs
# blew up on a few unseen windows (docs/accuracy.md). Layers, units and parameter counts stay
# those of the Keras reference models; `lstmcast train --model simple` keeps relu.
ARCHITECTURE: dict[str, dict[str, Any]] = {
    name: {"revin": True, "activation": "tanh"} for name in ("simple", "stacked", "bidirectional")
}

RunCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Prepared:
    """A benchmark series: the z-scored values (T, F) float32 and the split."""

    scaled: np.ndarray
    split: Split
    columns: tuple[str, ...]


def protocol_split(protocol: str, n_rows: int) -> Split:
    """Train/val/test rows of the standard protocol for a file of `n_rows` rows."""
    if protocol == "ett-hourly":
        return split_by_rows(n_rows, *ETT_HOURLY)
    if protocol == "ett-minute":
        return split_by_rows(n_rows, *(4 * row for row in ETT_HOURLY))
    if protocol == "ratio":
        n_train, n_test = int(n_rows * 0.7), int(n_rows * 0.2)
        return split_by_rows(n_rows, n_train, n_rows - n_test)
    raise ConfigError(
        f"The 'protocol' parameter must be one of {', '.join(PROTOCOLS)}. Got {protocol!r} instead."
    )


def load_protocol(path: str | Path, protocol: str) -> Prepared:
    """Read `path`, split it by `protocol` and z-score every column with train statistics."""
    series = prepare(read_table(path), source=f"'{path}'")
    split = protocol_split(protocol, len(series))
    scaler = fit_scaler(series.values[split.train[0] : split.train[1]], "standard")
    scaled = np.ascontiguousarray(scaler.transform(series.values), dtype=np.float32)
    return Prepared(scaled, split, series.columns)


def score(
    model: torch.nn.Module,
    series: torch.Tensor,
    starts: np.ndarray,
    lookback: int,
    horizon: int,
) -> dict[str, float]:
    """MSE and MAE over every window, step and variable of `starts` (z-scale)."""
    n_targets = series.shape[1]
    squared = absolute = 0.0
    for i in range(0, len(starts), SCORE_CHUNK):
        chunk = starts[i : i + SCORE_CHUNK]
        predicted = torch.from_numpy(predict_windows(model, series, chunk, lookback))
        index = torch.as_tensor(chunk, dtype=torch.long, device=series.device)
        actual = gather_targets(series, index, lookback, horizon, n_targets).cpu()
        error = (predicted - actual).double()
        squared += float(error.square().sum())
        absolute += float(error.abs().sum())
    count = len(starts) * horizon * n_targets
    return {"mse": squared / count, "mae": absolute / count}


def benchmark_config(
    model_name: str,
    horizon: int,
    lookback: int,
    seed: int,
    device: str,
    options: dict[str, Any],
    model_options: dict[str, Any],
) -> RunConfig:
    """The run config of one benchmark run: the protocol's, the model's benchmark defaults
    (`TRAINING`, `ARCHITECTURE`) and the caller's options on top."""
    return make_config(
        {
            "model": model_name,
            "lookback": lookback,
            "horizon": horizon,
            "seed": seed,
            "device": device,
            "model_options": {**ARCHITECTURE.get(model_name, {}), **model_options},
            **TRAINING.get(model_name, {}),
            **options,
        }
    )


def run_one(
    data: Prepared,
    model_name: str,
    horizon: int,
    lookback: int,
    seed: int,
    *,
    device: str = "auto",
    options: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
    checkpoint: str | Path | None = None,
) -> dict[str, Any]:
    """Train `model_name` once on the train windows (early stopping on val) and score it.

    With `checkpoint` (a directory) the loop saves its state after every epoch and a run of
    the same options and data goes on from it: a long run (an ensemble on the CPU) may be
    stopped and finished by a later process. `train_seconds` is then this process's share and
    `epoch_seconds` the sum of every epoch's time, whichever process ran it."""
    split = data.split
    check_split(split, lookback, horizon)
    config = benchmark_config(
        model_name, horizon, lookback, seed, device, options or {}, model_options or {}
    )
    target = resolve_device(config.device)
    n_features = data.scaled.shape[1]
    test_starts = split_windows(split, "test", lookback, horizon)
    saved = None
    if checkpoint is not None:  # the data's digest: its values and its split
        digest = hashlib.sha256(np.ascontiguousarray(data.scaled).tobytes())
        digest.update(repr(split).encode())
        saved = Checkpoint(Path(checkpoint), fingerprint(config, digest.hexdigest()), None)
    ran: list[int] = []  # the epochs this process trains
    started = time.perf_counter()
    fitted = fit_model(
        data.scaled,
        n_features,
        split,
        config,
        target,
        callbacks=[lambda epoch: ran.append(epoch.number)],
        checkpoint=saved,
    )
    seconds = time.perf_counter() - started
    model, series, result, val_starts = (
        fitted.model,
        fitted.series,
        fitted.training,
        fitted.val_starts,
    )
    val = score(model, series, val_starts, lookback, horizon)
    test = score(model, series, test_starts, lookback, horizon)
    return {
        "model": model_name,
        "horizon": horizon,
        "lookback": lookback,
        "seed": seed,
        "mse": test["mse"],
        "mae": test["mae"],
        "val_mse": val["mse"],
        "val_mae": val["mae"],
        "train_seconds": seconds,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "n_test_windows": len(test_starts),
        "device": str(target),
        "options": {**config.model_options, **{**TRAINING.get(model_name, {}), **(options or {})}},
        **(
            {}
            if saved is None
            else {
                "resumed_after_epoch": ran[0] - 1 if ran else len(result.history),
                "epoch_seconds": sum(row["seconds"] for row in result.history),
            }
        ),
    }


def run_benchmark(
    path: str | Path,
    protocol: str,
    models: Sequence[str],
    horizons: Sequence[int],
    lookback: int,
    seeds: Sequence[int] = (0,),
    *,
    options: dict[str, Any] | None = None,
    model_options: dict[str, dict[str, Any]] | None = None,
    on_run: RunCallback | None = None,
) -> list[dict[str, Any]]:
    """One row per (model, horizon, seed): test MSE/MAE on the z-scale, train seconds, and more.

    `options` are run options the protocol leaves free (training and architecture fields of
    `RunConfig`, e.g. epochs, lr, layers, device); they override the per-model defaults
    (`TRAINING`) for every model; a `model_options` entry among them applies to every model.
    `model_options` maps a model name to its own architecture overrides, e.g.
    `{"seglstm": {"hidden": 256}}`.
    `on_run(row)` is called after each run (for progress output or caching).
    """
    data = load_protocol(path, protocol)
    run_options = dict(options or {})
    device = run_options.pop("device", "auto")
    shared_model_options = run_options.pop("model_options", {})

    def own(name: str) -> dict[str, Any]:
        return {**shared_model_options, **(model_options or {}).get(name, {})}

    # every model's options are checked before the first one trains
    n_features = data.scaled.shape[1]
    for name in models:
        for horizon in horizons:
            check_split(data.split, lookback, horizon)
            config = benchmark_config(name, horizon, lookback, 0, device, run_options, own(name))
            build_for_run(config, n_features, n_features, seeded=False)
    rows = []
    for name in models:
        for horizon in horizons:
            for seed in seeds:
                row = run_one(
                    data,
                    name,
                    horizon,
                    lookback,
                    seed,
                    device=device,
                    options=run_options,
                    model_options=own(name),
                )
                row["dataset"] = Path(path).stem
                rows.append(row)
                if on_run is not None:
                    on_run(row)
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and population std over seeds per (model, horizon, lookback), in first-seen order."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["horizon"], row["lookback"]), []).append(row)
    out = []
    for (model, horizon, lookback), group in groups.items():
        summary: dict[str, Any] = {
            "model": model,
            "horizon": horizon,
            "lookback": lookback,
            "n": len(group),
        }
        for key in ("mse", "mae", "val_mse", "train_seconds"):
            values = np.array([g[key] for g in group if g.get(key) is not None], dtype=float)
            summary[key] = float(values.mean()) if len(values) else math.nan
            summary[f"{key}_std"] = float(values.std()) if len(values) else math.nan
        out.append(summary)
    return out
