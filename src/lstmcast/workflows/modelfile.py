"""Model files: a directory with `model.safetensors` (weights, nothing else) and `config.json`
(everything else). They hold a run's `RunConfig` and its `FittedState`, every field of it, and
`load` gives both back. Loading parses JSON and reads tensors; it never runs code from the files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lstmcast import models
from lstmcast.config import RunConfig, make_config
from lstmcast.data import Split
from lstmcast.data.panel import PanelScaler, PanelSplit
from lstmcast.data.transform import LevelState
from lstmcast.engine.training import TrainResult
from lstmcast.errors import ConfigError, ModelFileError
from lstmcast.files import atomic_write, versions, write_json
from lstmcast.workflows.calibration import Calibration
from lstmcast.workflows.fitting import FittedState, Inputs

FORMAT = "lstmcast-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save(config: RunConfig, state: FittedState, path: str | Path) -> Path:
    """Write `config` and every field of `state` into directory `path` (created if needed)."""
    from safetensors.torch import save as save_tensors

    directory = Path(path)
    spec = state.model.spec if isinstance(state.model, models.WithCovariates) else None
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.model.state_dict().items()}
    content = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": models.config_dict(models.core(state.model)),
        "covariates": spec.to_dict() if spec is not None else None,
        "inputs": state.inputs.to_dict(),
        "run_config": config.to_dict(),
        "columns": {
            "targets": state.targets,
            "covariates": state.covariates,
            "time_col": state.time_col,
        },
        "frequency": state.freq,
        "lookback": config.lookback,
        "horizon": config.horizon,
        "seed": config.seed,
        "scaler": state.scaler.to_dict(),
        "naive_mae": {
            "scaled": [float(v) for v in state.naive_mae_scaled],
            "original": [float(v) for v in state.naive_mae_original],
        },
        "split": state.split.to_dict(),
        "training": state.training.to_dict(),
        "n_train_windows": state.n_train_windows,
        "data_sha256": state.data_sha256,
        "calibration": None if state.calibration is None else state.calibration.to_dict(),
        "levels": None if state.levels is None else state.levels.to_dict(),
        "up_fraction": None if state.up_fraction is None else [float(v) for v in state.up_fraction],
        "versions": versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    atomic_write(directory / WEIGHTS, save_tensors(tensors, metadata=metadata))
    write_json(directory / CONFIG, content)
    return directory


def load(path: str | Path) -> tuple[RunConfig, FittedState]:
    """Read a model directory written by `save` (its model on the CPU); anything else raises
    `ModelFileError`."""
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
        config = make_config(dict(content["run_config"]))
        model = models.from_config_dict(content["architecture"])
        if content.get("covariates") is not None:
            model = models.WithCovariates(
                model, models.CovariateSpec.from_dict(content["covariates"])
            )
        columns = content["columns"]
        naive = content["naive_mae"]
        split = content["split"]
        if "splits" in split:
            splits = PanelSplit.from_dict(split)
        else:  # a file from before panels: one series
            splits = PanelSplit(
                (Split(tuple(split["train"]), tuple(split["val"]), tuple(split["test"])),)
            )
        inputs = Inputs.from_dict(content.get("inputs"))
        scaler = PanelScaler.from_dict(content["scaler"])
        if scaler.center.shape[0] != len(inputs.ids) or len(splits.splits) != len(inputs.ids):
            raise ModelFileError(
                f"'{config_file}' has {scaler.center.shape[0]} series scalers and "
                f"{len(splits.splits)} splits for {len(inputs.ids)} series"
            )
        state = FittedState(
            model=model,
            scaler=scaler,
            targets=list(columns["targets"]),
            covariates=list(columns["covariates"]),
            time_col=columns.get("time_col"),
            freq=content.get("frequency"),
            split=splits,
            naive_mae_scaled=np.asarray(naive["scaled"], dtype=np.float64),
            naive_mae_original=np.asarray(naive["original"], dtype=np.float64),
            training=TrainResult.from_dict(content.get("training", {})),
            n_train_windows=int(content.get("n_train_windows", 0)),
            data_sha256=str(content.get("data_sha256", "")),
            calibration=None
            if content.get("calibration") is None
            else Calibration.from_dict(content["calibration"], f"'{config_file}'"),
            inputs=inputs,
            levels=LevelState.from_dict(content.get("levels")),
            up_fraction=None
            if content.get("up_fraction") is None
            else np.asarray(content["up_fraction"], dtype=np.float64),
        )
    except (KeyError, TypeError, ValueError, ConfigError, AttributeError) as exc:
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
    model.eval()
    return config, state
