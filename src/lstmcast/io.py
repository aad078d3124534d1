"""Model files: a directory with `model.safetensors` (weights, nothing else) and `config.json`
(everything else). Loading parses JSON and reads tensors; it never runs code from the files."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmcast import __version__, models
from lstmcast.config import make_config
from lstmcast.data import Scaler, Split
from lstmcast.errors import ConfigError, ModelFileError
from lstmcast.forecaster import Forecaster
from lstmcast.training import TrainResult, resolve_device

FORMAT = "lstmcast-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def versions() -> dict[str, str]:
    import pandas

    return {
        "lstmcast": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "python": platform.python_version(),
    }


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, content: Any) -> None:
    atomic_write(path, (json.dumps(content, indent=2, allow_nan=False) + "\n").encode())


def save(forecaster: Forecaster, path: str | Path) -> Path:
    """Save a fitted forecaster into directory `path` (created if needed)."""
    from safetensors.torch import save as save_tensors

    forecaster._check_fitted()
    directory = Path(path)
    cfg = forecaster.config
    state = {k: v.detach().cpu().contiguous() for k, v in forecaster.model_.state_dict().items()}
    content = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": models.config_dict(forecaster.model_),
        "run_config": cfg.to_dict(),
        "columns": {
            "targets": forecaster.targets_,
            "covariates": forecaster.covariates_,
            "time_col": forecaster.time_col_,
        },
        "frequency": forecaster.freq_,
        "lookback": cfg.lookback,
        "horizon": cfg.horizon,
        "seed": cfg.seed,
        "scaler": forecaster.scaler_.to_dict(),
        "naive_mae": {
            "scaled": [float(v) for v in forecaster.naive_mae_scaled_],
            "original": [float(v) for v in forecaster.naive_mae_original_],
        },
        "split": {
            "train": list(forecaster.split_.train),
            "val": list(forecaster.split_.val),
            "test": list(forecaster.split_.test),
        },
        "training": {k: v for k, v in forecaster.training_.to_dict().items() if k != "history"},
        "data_sha256": forecaster.data_sha256_,
        "versions": versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    atomic_write(directory / WEIGHTS, save_tensors(state, metadata=metadata))
    write_json(directory / CONFIG, content)
    return directory


def load(path: str | Path, device: str = "auto") -> Forecaster:
    """Load a model directory written by `save`; anything else raises `ModelFileError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(path)
    config_file, weights_file = directory / CONFIG, directory / WEIGHTS
    if not directory.is_dir():
        raise ModelFileError(f"model directory '{directory}' does not exist")
    for file in (config_file, weights_file):
        if not file.is_file():
            raise ModelFileError(f"'{directory}' is not an lstmcast model: it has no {file.name}")
    try:
        content = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"'{config_file}' is not valid JSON: {exc}") from exc
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ModelFileError(
            f"'{config_file}' is not an lstmcast model file (no format '{FORMAT}')"
        )
    version = content.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelFileError(
            f"'{config_file}' has format version {version!r}; this lstmcast reads versions 1 to "
            f"{FORMAT_VERSION} (upgrade lstmcast for newer files)"
        )
    try:
        weights = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"'{weights_file}' is not a valid safetensors file: {exc}") from exc

    try:
        forecaster = Forecaster.from_config(make_config(dict(content["run_config"])))
        model = models.from_config_dict(content["architecture"])
        columns = content["columns"]
        targets, covariates = list(columns["targets"]), list(columns["covariates"])
        scaler = Scaler.from_dict(content["scaler"])
        naive = content["naive_mae"]
        split = content["split"]
        forecaster.split_ = Split(tuple(split["train"]), tuple(split["val"]), tuple(split["test"]))
        forecaster.naive_mae_scaled_ = np.asarray(naive["scaled"], dtype=np.float64)
        forecaster.naive_mae_original_ = np.asarray(naive["original"], dtype=np.float64)
        training = content.get("training", {})
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelFileError(f"'{config_file}' is malformed: {type(exc).__name__}: {exc}") from exc

    expected = model.state_dict()
    if set(weights) != set(expected):
        extra = sorted(set(weights) - set(expected))
        lost = sorted(set(expected) - set(weights))
        raise ModelFileError(
            f"'{weights_file}' does not match its config: "
            f"missing tensors {lost[:3]}, unexpected tensors {extra[:3]}"
        )
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape:
            raise ModelFileError(
                f"'{weights_file}': tensor '{name}' has shape {tuple(tensor.shape)}, "
                f"the config needs {tuple(expected[name].shape)}"
            )
    model.load_state_dict(weights)
    forecaster.device_ = resolve_device(device)
    forecaster.model_ = model.to(forecaster.device_).eval()
    forecaster.scaler_ = scaler
    forecaster.targets_ = targets
    forecaster.covariates_ = covariates
    forecaster.time_col_ = columns.get("time_col")
    forecaster.freq_ = content.get("frequency")
    forecaster.data_sha256_ = content.get("data_sha256", "")
    forecaster.training_ = TrainResult(
        best_epoch=int(training.get("best_epoch", 0)),
        stopped=str(training.get("stopped", "completed")),
        message=str(training.get("message", "")),
    )
    forecaster.n_train_windows_ = 0
    return forecaster
