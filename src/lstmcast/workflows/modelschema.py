"""The schema of config.json in a model directory: one small check per field (its type and
range), composed into `SCHEMA`, which `modelfile.load` applies before anything is built. A
failing check raises `Invalid`, whose message starts with the field's path."""

from __future__ import annotations

import dataclasses
import re
import reprlib
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

from lstmcast import choices, models
from lstmcast.config import RunConfig

FORMAT = "lstmcast-model"
FORMAT_VERSION = 3  # 2: `weights_sha256` required; 3: `config_sha256` too (older files load)

MAX_CONFIG_BYTES = 64 * 2**20  # a panel of thousands of series needs a few MiB
MAX_DEPTH = 64  # config.json nests 6 levels deep (calibration's score grid)
MAX_UNITS = 65536  # the width of an LSTM layer, of seglstm, of an embedding
MAX_LAYERS = 64
MAX_SIZE = 2**20  # lookback, horizon, features, context
MAX_COUNT = 2**53  # rows, windows, epochs, seeds (exact as floats)
MAX_VALUE = float(np.finfo(np.float32).max)  # values the models compute with are float32
MAX_FLOAT = float(np.finfo(np.float64).max)


class Invalid(Exception):
    """A field of config.json that fails its check; the message starts with the field."""


Check = Callable[[Any, str], None]  # (value, where) -> None, or raise Invalid


def _fail(where: str, wanted: str, value: Any) -> NoReturn:
    raise Invalid(f"{where} must be {wanted}; got {reprlib.repr(value)}")


def _at(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def anything(value: Any, where: str) -> None:
    """Fields `load` never reads (the versions, the date)."""


def boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        _fail(where, "true or false", value)


def integer(lo: int = 0, hi: int = MAX_COUNT) -> Check:
    def check(value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            _fail(where, f"an int in [{lo}, {hi}]", value)

    return check


def number(lo: float = -MAX_FLOAT, hi: float = MAX_FLOAT) -> Check:
    def check(value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            _fail(where, f"a number in [{lo:g}, {hi:g}]", value)

    return check


def string(*allowed: str) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, str) or (allowed and value not in allowed):
            _fail(where, f"one of {', '.join(allowed)}" if allowed else "a string", value)

    return check


def nullable(inner: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if value is not None:
            inner(value, where)

    return check


def sequence(
    item: Check, min_len: int = 0, max_len: int = MAX_COUNT, unique: bool = False
) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list) or not min_len <= len(value) <= max_len:
            _fail(where, f"a list of {min_len} to {max_len} items", value)
        for k, v in enumerate(value):
            item(v, _at(where, k))
        if unique and len(set(value)) != len(value):
            _fail(where, "a list without repeats", value)

    return check


def names(min_len: int = 0) -> Check:
    """Column names, series ids: distinct strings."""
    return sequence(string(), min_len=min_len, unique=True)


def mapping(values: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            _fail(where, "a JSON object", value)
        for k, v in value.items():
            values(v, _at(where, k))

    return check


def record(required: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    """A JSON object with these fields (others are allowed and ignored)."""
    fields = {**required, **(optional or {})}

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            _fail(where or "the file", "a JSON object", value)
        for key in required:
            if key not in value:
                raise Invalid(f"{_at(where, key)} is missing")
        for key, inner in fields.items():
            if key in value:
                inner(value[key], _at(where, key))

    return check


def array(ndims: tuple[int, ...], lo: float = -MAX_VALUE, hi: float = MAX_VALUE) -> Check:
    """Nested lists of numbers in [lo, hi] with one of `ndims` dimensions (shapes are
    compared with the other fields in `_agreements`)."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, list):
            _fail(where, f"a {ndims[0]}-D list of numbers", value)
        try:
            a = np.asarray(value)
        except (ValueError, TypeError, OverflowError):  # ragged, or ints beyond 64 bits
            _fail(where, f"a {ndims[0]}-D list of numbers", value)
        numeric = a.dtype.kind in "iuf" or a.size == 0
        if a.ndim not in ndims or not numeric or not ((a >= lo) & (a <= hi)).all():
            _fail(where, f"a {ndims[0]}-D list of numbers in [{lo:g}, {hi:g}]", value)

    return check


def digest(value: Any, where: str) -> None:
    if not isinstance(value, str) or not re.fullmatch("[0-9a-f]{64}", value):
        _fail(where, "a sha256 digest (64 hex digits)", value)


def row_range(value: Any, where: str) -> None:
    sequence(integer(), min_len=2, max_len=2)(value, where)
    if value[0] > value[1]:
        _fail(where, "a row range [start, end] with start <= end", value)


def split(value: Any, where: str) -> None:
    """One split per series, or a file from before panels: one wide split."""
    if isinstance(value, dict) and "splits" in value:
        parts = sequence(row_range, min_len=3, max_len=3)
        pair = sequence(string(), min_len=2, max_len=2)
        record({"splits": sequence(nullable(parts), min_len=1)}, {"skipped": sequence(pair)})(
            value, where
        )
    else:
        record({"train": row_range, "val": row_range, "test": row_range})(value, where)


# A RunConfig field's check, by its annotation; RunConfig itself checks the values' ranges.
_BY_ANNOTATION: dict[str, Check] = {
    "str": string(),
    "str | None": nullable(string()),
    "int": integer(),
    "int | None": nullable(integer()),
    "float": number(),
    "float | None": nullable(number()),
    "bool": boolean,
    "bool | None": nullable(boolean),
    "tuple[str, ...]": sequence(string()),
    "tuple[str, ...] | None": nullable(sequence(string())),
    "tuple[int, ...] | None": nullable(sequence(integer(1, MAX_UNITS), max_len=MAX_LAYERS)),
    "tuple[float, ...]": sequence(number()),
    "tuple[float, ...] | None": nullable(sequence(number())),
    "dict[str, Any]": mapping(anything),
}
RUN_CONFIG = record(
    {}, {f.name: _BY_ANNOTATION.get(str(f.type), anything) for f in dataclasses.fields(RunConfig)}
)
LEVEL = number(0, 1)
ARCHITECTURE = record(
    {
        "name": string(*models.MODELS),
        "n_features": integer(1, MAX_SIZE),
        "horizon": integer(1, MAX_SIZE),
    },
    {
        "n_targets": nullable(integer(1, MAX_SIZE)),
        "lookback": integer(1, MAX_SIZE),
        "layers": sequence(integer(1, MAX_UNITS), min_len=1, max_len=MAX_LAYERS),
        "hidden": integer(2, MAX_UNITS),
        "segment": integer(1, MAX_SIZE),
        "context": integer(0, MAX_SIZE),
        "members": integer(1, 64),
        "reduce": string(*choices.values(choices.EnsembleReduce)),
        "period": integer(1, MAX_SIZE),
        "quantiles": sequence(LEVEL, max_len=99),
        "dropout": number(0, 1),
        "bidirectional": boolean,
        "revin": boolean,
        "activation": string(),
        "revin_mode": string(),
    },
)
SCALER = record({"kind": string(), "center": array((1, 2)), "scale": array((1, 2), lo=0)})
PER_TARGET = array((1,), lo=0)  # one value per target
SCHEMA = record(
    {
        "format": string(FORMAT),
        "format_version": integer(1, FORMAT_VERSION),
        "architecture": ARCHITECTURE,
        "run_config": RUN_CONFIG,
        "columns": record(
            {"targets": names(min_len=1), "covariates": names()},
            {"time_col": nullable(string())},
        ),
        "naive_mae": record({"scaled": PER_TARGET, "original": PER_TARGET}),
        "split": split,
        "scaler": SCALER,
    },
    {
        "weights_sha256": digest,
        "config_sha256": digest,
        "covariates": nullable(
            record(
                {"horizon": integer(1, MAX_SIZE)},
                {
                    "n_future": integer(0, MAX_SIZE),
                    "n_static": integer(0, MAX_SIZE),
                    "cardinalities": sequence(integer(1)),
                    "widths": sequence(integer(1, MAX_UNITS)),
                },
            )
        ),
        "inputs": nullable(
            record(
                {"ids": names(min_len=1)},
                {
                    "id_col": nullable(string()),
                    "future_covariates": names(),
                    "calendar": names(),
                    "holidays": nullable(string()),
                    "static_numeric": names(),
                    "static_values": array((1, 2)),
                    "static_center": array((1,)),
                    "static_scale": array((1,), lo=0),
                    "static_categorical": names(),
                    "static_codes": array((1, 2), lo=0),
                    "categories": mapping(names()),
                    "id_embedding": integer(0, MAX_UNITS),
                },
            )
        ),
        "frequency": nullable(string()),
        "lookback": integer(1, MAX_SIZE),
        "horizon": integer(1, MAX_SIZE),
        "seed": integer(),
        "training": record(
            {},
            {
                "epochs_run": integer(),
                "best_epoch": integer(),
                "best_val_loss": nullable(number()),
                "stopped": string(),
                "message": string(),
                "device": string(),
                "seconds": number(0),
                "history": sequence(mapping(nullable(number()))),
                "member_best_epochs": sequence(integer(0), max_len=64),
            },
        ),
        "n_train_windows": integer(),
        "data_sha256": string(),
        "calibration": nullable(
            record(
                {
                    "method": string(*choices.values(choices.IntervalMethod)),
                    "levels": sequence(LEVEL, min_len=1, max_len=99),
                    "n_windows": integer(),
                    "naive": array((3,), lo=0),
                },
                {
                    "model": nullable(array((3,))),
                    "quantiles": sequence(LEVEL, max_len=99),
                    "mc_samples": integer(),
                    "gamma": number(0, 1),
                    "score_grid": nullable(array((4,))),
                    "calibration_end": integer(),
                    "spread_floor": nullable(array((2,), lo=0)),
                },
            )
        ),
        "levels": nullable(
            record(
                {
                    "kinds": sequence(string()),
                    "scaler": SCALER,
                    "naive_mae_scaled": PER_TARGET,
                    "naive_mae_original": PER_TARGET,
                }
            )
        ),
        "up_fraction": nullable(array((1,), lo=0, hi=1)),
        "baselines": nullable(
            record({"train_mean": array((2,)), "season": nullable(integer(2, MAX_SIZE))})
        ),
        "versions": anything,
        "created": anything,
    },
)
