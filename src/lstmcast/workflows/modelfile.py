"""Model files: a directory with `model.safetensors` (weights, nothing else) and `config.json`
(everything else). They hold a run's `RunConfig` and its `FittedState`, every field of it, and
`load` gives both back. Loading parses JSON and reads tensors; it never runs code from the files.

`load` trusts nothing it reads. config.json is bounded (size, nesting) before it is parsed;
every field is checked for its type and range (`modelschema.SCHEMA`) and against the other
fields (`_agreements`) before a model is built, and the model may not need more weights than
the weights file holds; the weights must have the sha256 that `save` recorded and be finite,
and config.json the sha256 of its own fields (format 3), so that an edit leaving every field
valid (swapped target names, another scaler) is refused too.
Whatever is wrong, the caller gets one `ModelFileError` naming the file and the field, never
another exception and never a large allocation made on the word of a damaged file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import reprlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from lstmcast import models
from lstmcast.config import RunConfig, make_config
from lstmcast.data import Split, transform
from lstmcast.data.panel import PanelScaler, PanelSplit
from lstmcast.data.transform import LevelState
from lstmcast.engine.training import TrainResult
from lstmcast.errors import LstmcastError, ModelFileError
from lstmcast.evaluation.baselines import BaselineState
from lstmcast.files import atomic_write, versions, write_json
from lstmcast.workflows.calibration import MC_DROPOUT, SPREAD, Calibration
from lstmcast.workflows.fitting import FittedState, Inputs
from lstmcast.workflows.modelschema import (
    FORMAT,
    FORMAT_VERSION,
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    SCHEMA,
    Invalid,
)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"

# What `load` turns into ModelFileError when a damaged file makes a reader raise it.
FAILURES = (
    LstmcastError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    IndexError,
    OverflowError,
    RecursionError,
    MemoryError,
    RuntimeError,
)


def save(config: RunConfig, state: FittedState, path: str | Path) -> Path:
    """Write `config` and every field of `state` into directory `path` (created if needed)."""
    from safetensors.torch import save as save_tensors

    directory = Path(path)
    spec = state.model.spec if isinstance(state.model, models.WithCovariates) else None
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.model.state_dict().items()}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    weights = save_tensors(tensors, metadata=metadata)
    content = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
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
        "baselines": None if state.baselines is None else state.baselines.to_dict(),
        "versions": versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write(directory / WEIGHTS, weights)
    write_json(directory / CONFIG, seal(content))
    return directory


def seal(content: dict[str, Any]) -> dict[str, Any]:
    """`content` with `config_sha256`: the digest of every other field, so that `load` can
    tell a config.json edited by hand (swapped target names, another scaler) from the one
    saved with these weights."""
    return {**content, "config_sha256": config_digest(content)}


def config_digest(content: dict[str, Any]) -> str:
    body = {k: v for k, v in content.items() if k != "config_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def load(path: str | Path) -> tuple[RunConfig, FittedState]:
    """Read a model directory written by `save` (its model on the CPU); anything else raises
    `ModelFileError`."""
    directory = Path(path)
    config_file, weights_file = directory / CONFIG, directory / WEIGHTS
    if not directory.is_dir():
        raise ModelFileError(f"model directory '{directory}' does not exist")
    for file in (config_file, weights_file):
        if not file.is_file():
            raise ModelFileError(f"'{directory}' is not an lstmcast model: it has no {file.name}")
    try:
        content = _read_config(config_file)
        shapes = _read_shapes(weights_file)
        config, state = _restore(content, shapes)
    except Invalid as exc:
        raise ModelFileError(f"'{config_file}': {exc}") from exc
    except ModelFileError:
        raise
    except FAILURES as exc:
        raise ModelFileError(f"'{config_file}' is malformed: {_describe(exc)}") from exc
    if content["format_version"] >= 2 and "weights_sha256" not in content:
        raise ModelFileError(
            f"'{config_file}': field weights_sha256 is missing (format version "
            f"{content['format_version']} records the weights' sha256)"
        )
    try:
        _load_weights(state.model, shapes, weights_file, content.get("weights_sha256"))
    except ModelFileError:
        raise
    except FAILURES as exc:
        raise ModelFileError(f"'{weights_file}' does not fit its model: {_describe(exc)}") from exc
    if content["format_version"] >= 3:
        _check_sealed(content, config_file)
    return config, state


def _check_sealed(content: dict[str, Any], config_file: Path) -> None:
    """The fields are the ones `save` wrote (checked after every field's type and range, so
    that a damaged field is named as such)."""
    if "config_sha256" not in content:
        raise ModelFileError(
            f"'{config_file}': field config_sha256 is missing (format version "
            f"{content['format_version']} records config.json's own sha256)"
        )
    if content["config_sha256"] != config_digest(content):
        raise ModelFileError(
            f"'{config_file}' was edited after it was saved: its fields no longer match its "
            f"config_sha256; restore the saved file or train the model again"
        )


def _load_weights(
    model: Any, shapes: dict[str, tuple[int, ...]], file: Path, sha256: str | None
) -> None:
    """Load the weights into `model` once their names and shapes (from the header) are the
    model's, their bytes the ones `save` wrote, their dtypes the model's and their values
    finite."""
    expected = model.state_dict()
    if set(shapes) != set(expected):
        extra = sorted(set(shapes) - set(expected))
        lost = sorted(set(expected) - set(shapes))
        raise ModelFileError(
            f"'{file}' does not match its config: "
            f"missing tensors {lost[:3]}, unexpected tensors {extra[:3]}"
        )
    for name, shape in shapes.items():
        if shape != tuple(expected[name].shape):
            raise ModelFileError(
                f"'{file}': tensor '{name}' has shape {shape}, "
                f"the config needs {tuple(expected[name].shape)}"
            )
    weights = _read_weights(file, sha256)
    for name, tensor in weights.items():
        if tensor.dtype != expected[name].dtype:
            raise ModelFileError(
                f"'{file}': tensor '{name}' is {tensor.dtype}, the model needs "
                f"{expected[name].dtype}"
            )
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise ModelFileError(f"'{file}': tensor '{name}' has NaN or infinite values")
    model.load_state_dict(weights)
    model.eval()


# ------------------------------------------------------------------ reading the two files
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def _read_config(file: Path) -> dict[str, Any]:
    """config.json parsed, once it is known to be small and shallow enough to parse, with its
    format and version checked."""
    with file.open("rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ModelFileError(
            f"'{file}' is over {MAX_CONFIG_BYTES >> 20} MiB; an lstmcast config.json is smaller"
        )
    depth = _nesting(data)
    if depth > MAX_DEPTH:
        raise ModelFileError(
            f"'{file}' nests {depth} levels deep; an lstmcast config.json nests at most {MAX_DEPTH}"
        )
    try:
        content = json.loads(data.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ModelFileError(f"'{file}' is not valid JSON: {_describe(exc)}") from exc
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise ModelFileError(f"'{file}' is not an lstmcast model file (no format '{FORMAT}')")
    version = content.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelFileError(
            f"'{file}' has format version {reprlib.repr(version)}; this lstmcast reads "
            f"versions 1 to {FORMAT_VERSION} (upgrade lstmcast for newer files)"
        )
    return content


def _nesting(data: bytes) -> int:
    """How deep the brackets of JSON text `data` nest (those inside strings skipped): what
    json.loads would recurse to, measured without recursing, in chunks of bounded memory."""
    brackets = np.frombuffer(_NOT_BRACKET.sub(b"", _STRING.sub(b'""', data)), dtype=np.uint8)
    opening = np.frombuffer(b"[{", dtype=np.uint8)
    depth = deepest = 0
    for start in range(0, len(brackets), 2**20):
        chunk = brackets[start : start + 2**20]
        levels = depth + np.cumsum(np.where(np.isin(chunk, opening), 1, -1))
        deepest, depth = max(deepest, int(levels.max())), int(levels[-1])
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text:.20} is out of range")
    return value


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number lstmcast writes")


def _read_shapes(file: Path) -> dict[str, tuple[int, ...]]:
    """The tensors' names and shapes from the safetensors header (no tensor is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            names = list(handle.keys())  # safe_open's handle is no mapping
            return {name: tuple(handle.get_slice(name).get_shape()) for name in names}
    except Exception as exc:  # SafetensorError derives from Exception alone
        raise ModelFileError(f"'{file}' is not a valid safetensors file: {_describe(exc)}") from exc


def _read_weights(file: Path, sha256: str | None) -> dict[str, Any]:
    """The tensors, once their bytes are the ones `save` wrote (files from before the digest
    was recorded have none to check)."""
    from safetensors.torch import load as load_tensors

    data = file.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ModelFileError(
            f"'{file}': the weights do not match the sha256 recorded in config.json "
            f"(weights_sha256); the file is damaged or not the one saved with this config"
        )
    try:
        return load_tensors(data)
    except Exception as exc:  # SafetensorError derives from Exception alone
        raise ModelFileError(f"'{file}' is not a valid safetensors file: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, LstmcastError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


# ------------------------------------------------------------------ from fields to a state
@contextlib.contextmanager
def _field(name: str) -> Iterator[None]:
    """Name the field whose reader fails (its own messages seldom know the file's layout)."""
    try:
        yield
    except Invalid:
        raise
    except FAILURES as exc:
        text = _describe(exc)
        raise Invalid(text if text.startswith(name) else f"{name}: {text}") from exc


def _restore(
    content: dict[str, Any], shapes: dict[str, tuple[int, ...]]
) -> tuple[RunConfig, FittedState]:
    """The config and state of checked `content`, the model built (weights not yet loaded)
    once its size is known to fit the weights file."""
    SCHEMA(content, "")
    columns, naive = content["columns"], content["naive_mae"]
    with _field("run_config"):
        config = make_config(dict(content["run_config"]))
    with _field("inputs"):
        inputs = Inputs.from_dict(content.get("inputs"))
    with _field("scaler"):
        scaler = PanelScaler.from_dict(content["scaler"])
    with _field("split"):
        given = content["split"]
        splits = (
            PanelSplit.from_dict(given)
            if "splits" in given
            else PanelSplit((Split(*(tuple(given[k]) for k in ("train", "val", "test"))),))
        )
    with _field("training"):
        training = TrainResult.from_dict(content.get("training", {}))
    with _field("calibration"):
        calibration = (
            None
            if content.get("calibration") is None
            else Calibration.from_dict(content["calibration"], "calibration")
        )
    with _field("levels"):
        levels = LevelState.from_dict(content.get("levels"))
    with _field("covariates"):
        spec = (
            None
            if content.get("covariates") is None
            else models.CovariateSpec.from_dict(content["covariates"])
        )
    parts: dict[str, Any] = dict(
        scaler=scaler,
        targets=list(columns["targets"]),
        covariates=list(columns["covariates"]),
        time_col=columns.get("time_col"),
        freq=content.get("frequency"),
        split=splits,
        naive_mae_scaled=np.asarray(naive["scaled"], dtype=np.float64),
        naive_mae_original=np.asarray(naive["original"], dtype=np.float64),
        training=training,
        n_train_windows=content.get("n_train_windows", 0),
        data_sha256=content.get("data_sha256", ""),
        calibration=calibration,
        inputs=inputs,
        levels=levels,
        up_fraction=None
        if content.get("up_fraction") is None
        else np.asarray(content["up_fraction"], dtype=np.float64),
        baselines=None
        if content.get("baselines") is None
        else BaselineState.from_dict(content["baselines"]),
    )
    architecture = content["architecture"]
    _agree(_agreements(content, config, parts, spec))
    needed = _parameters(architecture, spec)
    held = sum(math.prod(shape) for shape in shapes.values())
    if needed > held:
        raise Invalid(
            f"architecture: its model has at least {needed} weights but {WEIGHTS} holds {held}"
        )
    with _field("architecture"):
        model = models.from_config_dict(architecture)
        reads = getattr(model.config, "context", None)
        if reads is not None:
            context = spec.size if spec is not None else 0
            _agree([("architecture.context", reads, context, "covariates")])
        if spec is not None:
            model = models.WithCovariates(model, spec)
    return config, FittedState(model=model, **parts)


Row = tuple[str, Any, Any, str]  # (field, found, expected, the fields that expect it)


def _agree(rows: list[Row]) -> None:
    """Raise Invalid for the first row whose found and expected values differ."""
    for name, found, expected, source in rows:
        if found != expected:
            raise Invalid(
                f"{name} is {reprlib.repr(found)}, which disagrees with {source} "
                f"({reprlib.repr(expected)} expected)"
            )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _agreements(
    content: dict[str, Any], config: RunConfig, parts: dict[str, Any], spec: Any
) -> list[Row]:
    """What must agree across the fields of a model file."""
    arch, inputs, scaler = content["architecture"], parts["inputs"], parts["scaler"]
    targets, covariates, future = parts["targets"], parts["covariates"], inputs.future_covariates
    V, S, L, H = len(targets), len(inputs.ids), config.lookback, config.horizon
    layout = inputs.layout(V, len(covariates))
    numeric = len(inputs.static.numeric_names)
    own = covariates[: len(config.covariates)] if config.macro else covariates  # less macro's
    wide = inputs.id_col is None  # a wide table is one series, named ""
    series, columns = "inputs.ids", "columns.targets"
    rows: list[Row] = [
        ("inputs.ids", inputs.ids if wide else ("",), ("",), "inputs.id_col (null: one series)"),
        ("lookback", content.get("lookback", L), L, "run_config.lookback"),
        ("horizon", content.get("horizon", H), H, "run_config.horizon"),
        ("seed", content.get("seed", config.seed), config.seed, "run_config.seed"),
        ("architecture.name", arch["name"], config.model, "run_config.model"),
        ("architecture.horizon", arch["horizon"], H, "run_config.horizon"),
        (
            "architecture.n_features",
            arch["n_features"],
            layout.n_inputs,
            f"{columns}, covariates, inputs",
        ),
        ("architecture.n_targets", arch.get("n_targets") or arch["n_features"], V, columns),
        ("architecture.lookback", arch.get("lookback", L), L, "run_config.lookback"),
        (
            "architecture.quantiles",
            arch.get("quantiles", []),
            list(config.head_quantiles()),
            "run_config.intervals",
        ),
        *(  # the options the model was built with
            (f"architecture.{key}", arch.get(key), _plain(value), f"run_config.{key}")
            for key, value in config.model_overrides().items()
            if key != "quantiles"
        ),
        ("covariates", spec, inputs.spec(H, layout), "inputs"),
        ("run_config.targets", list(config.targets or targets), targets, columns),
        ("run_config.covariates", list(config.covariates), own, "columns.covariates"),
        (
            "run_config.time_col",
            config.time_col or parts["time_col"],
            parts["time_col"],
            "columns.time_col",
        ),
        ("run_config.id_col", config.id_col, inputs.id_col, "inputs.id_col"),
        (
            "run_config.future_covariates",
            list(config.future_covariates),
            list(future),
            "inputs.future_covariates",
        ),
        (
            "the covariates that are targets",
            sorted({*covariates, *future} & {*targets}),
            [],
            f"{columns} (a column has one role)",
        ),
        (
            "the shape of scaler.center",
            scaler.center.shape,
            (S, V + len(covariates) + len(future)),
            f"{series} and the columns",
        ),
        ("scaler.kind", scaler.kind, config.scaler, "run_config.scaler"),
        ("the number of split.splits", len(parts["split"].splits), S, series),
        ("the length of naive_mae.scaled", len(parts["naive_mae_scaled"]), V, columns),
        ("the length of naive_mae.original", len(parts["naive_mae_original"]), V, columns),
        ("the length of inputs.static_center", len(inputs.static_center), numeric, "inputs"),
        ("the length of inputs.static_scale", len(inputs.static_scale), numeric, "inputs"),
    ]
    static = inputs.static
    for k, name in enumerate(static.categorical_names):  # codes index the embeddings
        n = len(static.categories[name])
        if static.codes.size and int(static.codes[:, k].max()) >= n:
            raise Invalid(f"inputs.static_codes has codes of '{name}' beyond its {n} categories")
    if config.macro is not None and len(covariates) == len(config.covariates):
        raise Invalid("run_config.macro names a macro table, but no column of it is a covariate")
    if arch.get("period", 0) > L:
        raise Invalid(f"architecture.period is {arch['period']}; it must be at most lookback {L}")
    if parts["up_fraction"] is not None:
        rows.append(("the length of up_fraction", len(parts["up_fraction"]), V, columns))
    if parts["baselines"] is not None:
        shape = parts["baselines"].train_mean.shape
        rows.append(("the shape of baselines.train_mean", shape, (S, V), f"{series} and targets"))
        season = parts["baselines"].season
        if season is not None and season > L:
            raise Invalid(f"baselines.season is {season}; it must be at most lookback {L}")
    with _field("run_config.transform"):
        kinds = transform.resolve(config.transform, targets)
    levels, calibration = parts["levels"], parts["calibration"]
    rows += [
        (
            "levels.kinds",
            None if levels is None else list(levels.kinds),
            None if transform.is_identity(kinds) else list(kinds),
            "run_config.transform",
        ),
        (
            "calibration.levels",
            () if calibration is None else calibration.levels,
            config.intervals,
            "run_config.intervals",
        ),
    ]
    if levels is not None:
        rows += [
            ("the shape of levels.scaler.center", levels.scaler.center.shape, (S, V), series),
            ("the length of levels.naive_mae_scaled", len(levels.naive_mae_scaled), V, columns),
            ("the length of levels.naive_mae_original", len(levels.naive_mae_original), V, columns),
        ]
    if calibration is not None:
        widths = (len(calibration.levels), H, V)  # (K, H, V)
        source = "calibration.levels, the horizon and the targets"
        model, grid = calibration.model, calibration.score_grid  # grid: (K, GRID, H, V)
        rows += [
            ("calibration.method", calibration.method, config.interval_method, "run_config"),
            ("calibration.quantiles", calibration.quantiles, config.head_quantiles(), "run_config"),
            ("the shape of calibration.naive", calibration.naive.shape, widths, source),
            (
                "the shape of calibration.model",
                widths if model is None else model.shape,
                widths,
                source,
            ),
            (
                "the shape of calibration.score_grid",
                widths if grid is None else (grid.shape[0], *grid.shape[2:]),
                widths,
                source,
            ),
        ]
        if calibration.method == SPREAD or calibration.spread_floor is not None:
            floor = None if calibration.spread_floor is None else calibration.spread_floor.shape
            rows.append(("the shape of calibration.spread_floor", floor, (H, V), source))
        if calibration.method == MC_DROPOUT:
            samples = calibration.mc_samples
            rows.append(("calibration.mc_samples", samples, config.mc_samples, "run_config"))
    return rows


def _parameters(arch: dict[str, Any], spec: Any) -> int:
    """At least how many weights the model of `arch` has (its largest tensors, a cheap lower
    bound): a damaged file that asks for more than its weights file holds is refused before
    a byte is allocated."""
    F, H = arch["n_features"], arch["horizon"]
    T = arch.get("n_targets") or F
    context = arch.get("context", 0)
    name = arch["name"]
    if "layers" in arch:  # the LSTM family
        directions = 2 if arch.get("bidirectional") else 1
        width, total = F, 0
        for units in arch["layers"]:
            total += directions * 4 * units * (width + units)
            width = units * directions
        total += (width + context) * H * T
    elif name == "linear":
        total = (arch.get("lookback", 1) * F + context) * H * T
    elif name == "seglstm":
        S, D = arch.get("segment", 1), arch.get("hidden", 2)
        total = 2 * S * D + 8 * D * D + (-(-H // S) + T) * (D // 2) + context * D
        total *= arch.get("members", 1)
    elif name == "mean":
        total = T
    else:
        total = 0
    if spec is not None and context:  # the embeddings of a model that reads them
        total += sum(c * w for c, w in zip(spec.cardinalities, spec.widths, strict=True))
    return total
