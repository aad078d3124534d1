"""Checkpoints of the training loop: after every epoch `train` writes everything it needs to
go on (weights, best weights, optimizer state, random-number states, counters, history) into
a directory, and resumes from it, so a killed run loses at most the epoch it was in and, on
the CPU, ends bit for bit where an uninterrupted run with the same seed ends.

Tensors go in safetensors, everything else in JSON; nothing is pickled. A checkpoint is two
files written in order: `state-<epoch>.safetensors`, then `state.json` naming it (each
atomic), after which older tensor files are removed. A kill at any moment leaves a
`state.json` whose tensor file exists. `fingerprint` ties a checkpoint to its run (config
and data): another run's checkpoint is refused, never silently resumed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lstmcast.errors import ConfigError
from lstmcast.files import atomic_write, write_json

STATE = "state.json"
FORMAT = "lstmcast-checkpoint"


@dataclass
class TrainState:
    """Where the loop stands after `epoch` (see `lstmcast.engine.training.train`)."""

    epoch: int
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # torch's optimizer state_dict
    rng: dict[str, torch.Tensor]  # "shuffler", "torch" (and "cuda") generator states
    counters: dict[str, Any] = field(default_factory=dict)  # lr, best epoch, patience, ...
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint directory of one run; `resume` says whether `train` starts from it:
    True requires the saved state to be this run's, None takes it only when it is (tune's
    trials and the final model, which resume whenever their study does)."""

    directory: Path
    fingerprint: str
    resume: bool | None = False

    def save(self, state: TrainState) -> None:
        from safetensors.torch import save as save_tensors

        tensors, content = _encode(state)
        name = f"state-{state.epoch}.safetensors"
        atomic_write(self.directory / name, save_tensors(tensors))
        write_json(
            self.directory / STATE,
            {"format": FORMAT, "fingerprint": self.fingerprint, "tensors": name, **content},
        )
        for old in self.directory.glob("state-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def load(self) -> TrainState | None:
        """The saved state, or None when there is none; ConfigError when it is another run's
        or damaged."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.directory / STATE
        if not path.is_file():
            return None
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            if content.get("format") != FORMAT:
                raise ValueError("not a checkpoint")
            if content.get("fingerprint") != self.fingerprint:
                if self.resume is None:
                    return None
                raise ConfigError(
                    f"the checkpoint in {self.directory} is of another run (other options or "
                    f"data); run without --resume to start over"
                )
            tensors = load_file(str(self.directory / str(content["tensors"])))
            return _decode(content, tensors)
        except ConfigError:
            raise
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise ConfigError(
                f"the checkpoint in {self.directory} cannot be read ({type(exc).__name__}: "
                f"{exc}); run without --resume to start over"
            ) from exc


def to_bytes(state: TrainState) -> bytes:
    """`state` as one safetensors blob, its JSON part in the header's metadata: what rank 0
    sends the other ranks of a DDP run on resume (no pickle, the checkpoint's own format)."""
    from safetensors.torch import save as save_tensors

    tensors, content = _encode(state)
    return save_tensors(tensors, metadata={"content": json.dumps(content)})


def from_bytes(data: bytes) -> TrainState:
    """The inverse of `to_bytes`."""
    from safetensors.torch import load as load_tensors

    # the safetensors layout: an 8-byte little-endian length, then the JSON header
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    return _decode(json.loads(header["__metadata__"]["content"]), load_tensors(data))


def _encode(state: TrainState) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(the tensors, the JSON content) of `state`."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, group in (("model.", state.model), ("best.", state.best)):
        tensors |= {prefix + k: v for k, v in group.items()}
    tensors |= {"rng." + k: v for k, v in state.rng.items()}
    optimizer, optimizer_tensors = _split_optimizer(state.optimizer)
    tensors |= optimizer_tensors
    owned = {k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()}
    content = {
        "epoch": state.epoch,
        "optimizer": optimizer,
        "counters": {k: _json_number(v) for k, v in state.counters.items()},
        "history": [{k: _json_number(v) for k, v in r.items()} for r in state.history],
    }
    return owned, content


def _decode(content: dict[str, Any], tensors: dict[str, torch.Tensor]) -> TrainState:
    group: dict[str, dict[str, torch.Tensor]] = {"model": {}, "best": {}, "rng": {}, "optim": {}}
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        group[prefix][rest] = value
    return TrainState(
        epoch=int(content["epoch"]),
        model=group["model"],
        best=group["best"],
        optimizer=_join_optimizer(content["optimizer"], group["optim"]),
        rng=group["rng"],
        counters={k: _from_json(v) for k, v in content["counters"].items()},
        history=[{k: _from_json(v) for k, v in r.items()} for r in content["history"]],
    )


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """An optimizer state_dict as JSON (param groups, scalar entries) and tensors."""
    tensors: dict[str, torch.Tensor] = {}
    entries: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        entries[str(index)] = {}
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{name}"] = value
            else:
                entries[str(index)][name] = _json_number(value)
    return {"param_groups": state["param_groups"], "state": entries}, tensors


def _join_optimizer(content: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {
        int(i): {k: _from_json(v) for k, v in values.items()}
        for i, values in content["state"].items()
    }
    for key, value in tensors.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in group.items()}
        for group in content["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def _json_number(value: Any) -> Any:
    """inf and NaN as strings (JSON has neither), in lists too."""
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return float(value) if value in ("inf", "-inf", "nan") else value
