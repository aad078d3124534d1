"""One fitted-state object: `load` gives back every field `fit` set."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

import lstmcast
from lstmcast.workflows.fitting import FittedState


def same(a, b) -> bool:
    if isinstance(a, torch.nn.Module):
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_load_restores_every_field_of_the_fitted_state(csv_file, tmp_path):
    fc = lstmcast.Forecaster("stacked", lookback=12, horizon=2, epochs=2, layers="8,4")
    fc.fit(csv_file).save(tmp_path / "m")
    loaded = lstmcast.load(tmp_path / "m", device="cpu")
    assert fc.config == loaded.config
    for field in dataclasses.fields(FittedState):
        if field.name == "scaler":  # arrays inside a dataclass with its own equality
            assert fc.state_.scaler.to_dict() == loaded.state_.scaler.to_dict()
            continue
        assert same(getattr(fc.state_, field.name), getattr(loaded.state_, field.name)), field
    assert loaded.state_.n_train_windows > 0 and len(loaded.state_.training.history) == 2
