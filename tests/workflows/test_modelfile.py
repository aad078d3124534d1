"""Verified model files: `load` refuses every damaged or tampered model directory with one
ModelFileError naming the file and the field, never another exception (issue 16). One small
model is trained per module; the fuzz suite damages it 200 ways per kind of damage (six
kinds) and replaces every field by every value it draws from."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_frame
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

import lstmcast
from lstmcast import Forecaster, ModelFileError
from lstmcast.workflows import modelfile


class Saved:
    """The files of one small trained model, and the frame it forecasts."""

    def __init__(self, directory: Path, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.content: dict[str, Any] = json.loads((directory / "config.json").read_text())
        self.weights = (directory / "model.safetensors").read_bytes()

    def write(
        self,
        directory: Path,
        content: Any = None,
        weights: bytes | None = None,
        text: str = "",
        sealed: bool = True,
    ) -> Path:
        """A model directory with these files (the saved ones where not given). An edited
        `content` is sealed again (its config_sha256 made to fit) unless `sealed=False`, so
        that each test reaches the check it is about."""
        directory.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict) and sealed:
            content = modelfile.seal(content)
        config = text or json.dumps(self.content if content is None else content)
        (directory / "config.json").write_text(config)
        (directory / "model.safetensors").write_bytes(self.weights if weights is None else weights)
        return directory

    def edited(self, directory: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
        content = copy.deepcopy(self.content)
        edit(content)
        return self.write(directory, content)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Saved:
    frame = make_frame(80)
    directory = tmp_path_factory.mktemp("model")
    Forecaster("simple", lookback=4, horizon=1, epochs=1, layers=(4,)).fit(frame).save(directory)
    return Saved(directory, frame)


def refused(directory: Path, *words: str) -> str:
    """The one-line message of the ModelFileError `load` raises, which names `words`."""
    with pytest.raises(ModelFileError) as info:
        lstmcast.load(directory)
    message = str(info.value)
    assert "\n" not in message and str(directory) in message
    for word in words:
        assert word in message
    return message


def tensors_with(saved: Saved, name: str, value: float) -> bytes:
    tensors = load_tensors(saved.weights)
    tensors[name] = tensors[name].clone().fill_(value)
    return save_tensors(tensors)


# ------------------------------------------------------------------ what must still load
def test_save_records_the_weights_sha256_and_the_file_loads(saved, tmp_path):
    assert saved.content["weights_sha256"] == hashlib.sha256(saved.weights).hexdigest()
    forecast = lstmcast.load(saved.write(tmp_path / "m")).predict(saved.frame)
    assert np.isfinite(forecast.to_numpy(dtype=float)).all()


def test_a_file_from_before_the_sha256_still_loads(saved, tmp_path):
    def version_1(content: dict[str, Any]) -> None:
        del content["weights_sha256"]
        content["format_version"] = 1

    old = saved.edited(tmp_path / "m", version_1)
    assert lstmcast.load(old).predict(saved.frame).shape == (1, 4)


def test_a_file_from_before_panels_still_loads(saved, tmp_path):
    def edit(content: dict[str, Any]) -> None:  # one wide split, one scaler row, no inputs
        train, val, test = content["split"]["splits"][0]
        content["split"] = {"train": train, "val": val, "test": test}
        content["scaler"] = {k: v[0] if k != "kind" else v for k, v in content["scaler"].items()}
        for key in ("inputs", "covariates", "levels", "up_fraction", "weights_sha256"):
            del content[key]
        content["format_version"] = 1

    assert lstmcast.load(saved.edited(tmp_path / "m", edit)).predict(saved.frame).shape == (1, 4)


# ------------------------------------------------------------------ regressions
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting the field at dotted `path` (list indices as numbers) to `value`."""

    def edit(content: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = content
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("architecture.layers", [1_000_000], ["architecture.layers[0]"]),
        ("architecture.n_features", 5, ["architecture.n_features"]),
        ("horizon", 2, ["horizon"]),
        ("run_config.horizon", 3, ["horizon"]),
        ("architecture.horizon", 2, ["architecture.horizon"]),
        ("lookback", 5, ["lookback"]),
        ("run_config.lookback", 6, ["lookback"]),
        ("columns.targets", ["load", "temp", "price"], ["columns.targets"]),
        ("columns.targets", ["load", "temp", "price", "hour", "extra"], ["columns.targets"]),
        ("columns.targets", ["load", "load", "price", "hour"], ["columns.targets", "repeats"]),
        ("training.best_epoch", "1", ["training.best_epoch"]),
        ("scaler.center.0", [1.0, 2.0, 3.0], ["scaler", "center"]),
        ("scaler.scale.0.1", -1.0, ["scaler"]),
        ("naive_mae.scaled", [0.1], ["naive_mae.scaled"]),
        ("split.splits.0.0", [0, -5], ["split.splits[0][0][1]"]),
        ("split.splits.0.1", [60, 50], ["split.splits[0][1]"]),
        ("up_fraction", [0.5], ["up_fraction"]),
        ("frequency", 3600, ["frequency"]),
        ("run_config.model", "stacked", ["architecture.name"]),
        ("run_config.layers", [5], ["architecture.layers"]),
        ("run_config.intervals", [0.8], ["calibration.levels"]),
        ("run_config.transform", "log", ["levels.kinds"]),
        (
            "calibration",
            {"method": "conformal", "levels": [0.8], "n_windows": 3, "naive": [[[1]]]},
            ["calibration"],
        ),
        ("levels", {"kinds": ["log"]}, ["levels.scaler"]),
        ("inputs.ids", ["a", "b"], ["inputs.ids"]),
        ("inputs.id_embedding", 2**70, ["inputs.id_embedding"]),
        ("covariates", {"horizon": 1, "cardinalities": [10**9], "widths": [8]}, ["covariates"]),
        ("weights_sha256", 12, ["weights_sha256"]),
        ("weights_sha256", None, ["weights_sha256"]),
        ("run_config.macro", "cpi.csv", ["run_config.macro"]),
        ("n_train_windows", -1, ["n_train_windows"]),
        ("architecture", [1, 2], ["architecture"]),
    ],
)
def test_load_refuses_an_edited_field_naming_it(saved, tmp_path, path, value, words):
    refused(saved.edited(tmp_path / "m", _set(path, value)), *words)


def test_load_refuses_a_model_larger_than_its_weights_before_building_it(saved, tmp_path):
    def edit(content: dict[str, Any]) -> None:  # consistent, but 60000 units: 15e9 weights
        content["architecture"]["layers"] = content["run_config"]["layers"] = [60_000]

    refused(saved.edited(tmp_path / "m", edit), "architecture", "at least", "holds")


def test_load_refuses_deeply_nested_and_oversized_json(saved, tmp_path, monkeypatch):
    deep = '{"format": "lstmcast-model", "format_version": 1, "x": ' + "[" * 100_000
    refused(saved.write(tmp_path / "a", text=deep + "]" * 100_000 + "}"), "nests 100001")
    brackets_in_strings = json.dumps(modelfile.seal({**saved.content, "created": "[" * 100_000}))
    assert lstmcast.load(saved.write(tmp_path / "b", text=brackets_in_strings))
    monkeypatch.setattr(modelfile, "MAX_CONFIG_BYTES", 2**14)
    refused(saved.write(tmp_path / "c", text=json.dumps(saved.content) + " " * 2**14), "MiB")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999", "1" * 5000])
def test_load_refuses_numbers_lstmcast_never_writes(saved, tmp_path, number):
    text = json.dumps(saved.content).replace('"seconds": ', f'"seconds": {number}, "x": ', 1)
    refused(saved.write(tmp_path / "m", text=text), "not valid JSON")


def test_load_refuses_flipped_or_truncated_weights(saved, tmp_path):
    flipped = bytearray(saved.weights)
    flipped[-3] ^= 0x40  # inside the last tensor's data: the header still parses
    refused(saved.write(tmp_path / "a", weights=bytes(flipped)), "sha256", "model.safetensors")
    refused(saved.write(tmp_path / "b", weights=saved.weights[:-8]), "model.safetensors")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_load_refuses_non_finite_weights_naming_the_tensor(saved, tmp_path, value):
    weights = tensors_with(saved, "head.weight", value)
    content = {**saved.content, "weights_sha256": hashlib.sha256(weights).hexdigest()}
    refused(saved.write(tmp_path / "m", content, weights), "head.weight", "NaN or infinite")


def test_load_refuses_weights_of_another_dtype(saved, tmp_path):
    tensors = load_tensors(saved.weights)
    tensors["head.bias"] = tensors["head.bias"].to(torch.float64)
    weights = save_tensors(tensors)
    content = {**saved.content, "weights_sha256": hashlib.sha256(weights).hexdigest()}
    refused(saved.write(tmp_path / "m", content, weights), "head.bias", "float64")


# ------------------------------------------------------------------ the fuzz suite
def _nested(depth: int) -> Any:
    value: Any = 1.0
    for _ in range(depth):
        value = [value]
    return value


# another type, a huge int (within float32, beyond it, beyond float64), a negative, a long
# list, nested lists (shallow, and deeper than load reads), an object
REPLACEMENTS: list[Any] = [
    None,
    True,
    "text",
    0,
    -1,
    -7.5,
    0.25,
    2**63,
    10**100,
    10**400,
    [],
    ["text"],
    [0] * 5000,
    _nested(6),
    _nested(70),
    {"key": [1, 2]},
]


def _replacements(old: Any) -> list[Any]:
    """What may replace `old`: anything else, but no string for a string (a column renamed is
    a model of other data, not a damaged file)."""
    return [
        v
        for v in REPLACEMENTS
        if json.dumps(v) != json.dumps(old) and not (isinstance(v, str) and isinstance(old, str))
    ]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value inside `node`, at any depth."""
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    found = []
    for key, child in children:
        found.append((*path, key))
        found.extend(_paths(child, (*path, key)))
    return found


def _parent(content: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        content = content[key]
    return content


def _replace(data: st.DataObject, saved: Saved) -> tuple[Any, bytes]:
    content = copy.deepcopy(saved.content)
    path = data.draw(st.sampled_from(_paths(content)), label="path")
    choices = _replacements(_parent(content, path)[path[-1]])
    _parent(content, path)[path[-1]] = data.draw(st.sampled_from(choices), label="value")
    return content, saved.weights


def _delete(data: st.DataObject, saved: Saved) -> tuple[Any, bytes]:
    content = copy.deepcopy(saved.content)
    path = data.draw(st.sampled_from(_paths(content)), label="path")
    parent = _parent(content, path)
    del parent[path[-1]]
    return content, saved.weights


def _flip(data: st.DataObject, saved: Saved, *, verified: bool = True) -> tuple[Any, bytes]:
    weights = bytearray(saved.weights)
    places = st.lists(st.integers(0, len(weights) - 1), min_size=1, max_size=4, unique=True)
    for at in data.draw(places, label="at"):
        weights[at] ^= data.draw(st.integers(1, 255), label="mask")
    content = copy.deepcopy(saved.content)
    if not verified:  # a version-1 file, without the sha256: the tensors themselves are checked
        del content["weights_sha256"]
        content["format_version"] = 1
    return content, bytes(weights)


def _flip_unverified(data: st.DataObject, saved: Saved) -> tuple[Any, bytes]:
    return _flip(data, saved, verified=False)


def _truncate(data: st.DataObject, saved: Saved) -> tuple[Any, bytes]:
    if data.draw(st.booleans(), label="config"):
        text = json.dumps(saved.content)
        return text[: data.draw(st.integers(0, len(text) - 2), label="length")], saved.weights
    return saved.content, saved.weights[: data.draw(st.integers(0, len(saved.weights) - 1))]


def _swap_targets(data: st.DataObject, saved: Saved) -> tuple[Any, bytes]:
    """Not sealed again: only config_sha256 tells a permutation from the saved order."""
    content = copy.deepcopy(saved.content)
    targets = content["columns"]["targets"]
    content["columns"]["targets"] = data.draw(st.permutations(targets), label="targets")
    return json.dumps(content), saved.weights


def _replace_unsealed(data: st.DataObject, saved: Saved) -> tuple[Any, bytes]:
    content, weights = _replace(data, saved)
    return json.dumps(content), weights


MUTATIONS = [_replace, _delete, _flip, _flip_unverified, _truncate, _swap_targets]
MUTATIONS += [_replace_unsealed]


def _outcome(saved: Saved, directory: Path) -> str:
    """'refused' (one line naming the file) or 'loaded' (and it forecasts finite numbers);
    any other exception fails the test."""
    try:
        forecaster = lstmcast.load(directory)
    except ModelFileError as exc:
        message = str(exc)
        assert "\n" not in message and str(directory) in message
        return "refused"
    forecast = forecaster.predict(saved.frame)
    assert forecast.shape == (1, 4)
    assert np.isfinite(forecast.to_numpy(dtype=float)).all()
    return "loaded"


def test_every_field_replaced_by_every_value(saved, tmp_path):
    """The replacements the fuzz suite draws from, every one at every field: some 2500 files."""
    outcomes = []
    directory = saved.write(tmp_path / "m")  # the weights once: only config.json changes
    for path in _paths(saved.content):
        for value in _replacements(_parent(saved.content, path)[path[-1]]):
            content = copy.deepcopy(saved.content)
            _parent(content, path)[path[-1]] = value
            (directory / "config.json").write_text(json.dumps(modelfile.seal(content)))
            outcomes.append(_outcome(saved, directory))
    assert len(outcomes) > 1000 and 0 < outcomes.count("loaded") < len(outcomes) / 4


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
@pytest.mark.parametrize("mutate", MUTATIONS, ids=lambda f: f.__name__.strip("_"))
def test_every_damaged_file_loads_and_forecasts_or_is_refused(saved, tmp_path, mutate, data):
    """200 damaged directories per kind of damage: each loads and forecasts finite numbers,
    or is refused with one line naming the file."""
    content, weights = mutate(data, saved)  # a dict is sealed again, a text is written as is
    text = content if isinstance(content, str) else json.dumps(modelfile.seal(content))
    directory = saved.write(tmp_path / "m", text=text or " ", weights=weights)
    event(f"{mutate.__name__.strip('_')}: {_outcome(saved, directory)}")


def test_a_hand_edit_that_keeps_every_field_valid_is_refused(saved, tmp_path):
    def swap(content: dict[str, Any]) -> None:
        content["columns"]["targets"] = content["columns"]["targets"][::-1]

    edited = saved.edited(tmp_path / "a", swap)  # sealed again: a model of other columns
    assert lstmcast.load(edited)
    content = copy.deepcopy(saved.content)
    swap(content)
    refused(saved.write(tmp_path / "b", content, sealed=False), "edited after it was saved")
    del content["config_sha256"]
    refused(saved.write(tmp_path / "c", content, sealed=False), "config_sha256 is missing")


def test_a_version_2_file_without_its_weights_sha256_is_refused(tmp_path):
    import json as _json

    from lstmcast.workflows.forecaster import Forecaster, load

    frame = pd.DataFrame({"a": np.sin(np.arange(60) / 3), "b": np.cos(np.arange(60) / 5)})
    path = Forecaster("linear", lookback=4, epochs=1, seed=0).fit(frame).save(tmp_path / "m")
    config = path / "config.json"
    content = _json.loads(config.read_text())
    assert content["format_version"] == 3 and len(content["weights_sha256"]) == 64
    del content["weights_sha256"], content["config_sha256"]  # deleting checks must not help
    content["format_version"] = 2
    config.write_text(_json.dumps(content))
    with pytest.raises(ModelFileError, match="weights_sha256 is missing"):
        load(path)
