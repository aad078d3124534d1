"""No silent garbage out: a forecast that is not finite is refused, inputs and forecasts far
outside the training range are counted and named, and data at another frequency than the
training data is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmcast.errors import DataError
from lstmcast.workflows.forecaster import Forecaster


@pytest.fixture(scope="module")
def fitted():
    from conftest import make_frame

    frame = make_frame()
    return Forecaster("lstm", lookback=8, epochs=2, seed=0, device="cpu").fit(frame), frame


def test_a_forecast_that_is_not_finite_is_refused(fitted):
    fc, frame = fitted
    broken = Forecaster.from_config(fc.config)
    broken.state_, broken.device_ = fc.state_, fc.device_
    saved = {k: v.clone() for k, v in fc.model_.state_dict().items()}
    try:
        with torch.no_grad():
            next(fc.model_.parameters()).fill_(float("nan"))
        with pytest.raises(DataError, match=r"not finite.*model file may be damaged"):
            broken.predict(frame)
        with pytest.raises(DataError, match="not finite"):
            broken.evaluate(frame)
    finally:
        fc.model_.load_state_dict(saved)


def test_inputs_far_out_are_counted_and_named(fitted):
    fc, frame = fitted
    assert "note" not in fc.predict(frame).attrs
    assert "far_from_training" not in fc.evaluate(frame)
    huge = frame.assign(load=frame.load * 1e6)
    future = fc.predict(huge)
    assert "training standard deviations" in future.attrs["note"]
    assert np.isfinite(future.to_numpy()).all()
    report = fc.evaluate(huge)
    far = report["far_from_training"]
    assert far["inputs"] > 0 and far["windows"] > 0 and far["first"]
    assert str(frame.date.iloc[0].year) in far["first"][0]  # names the window's time


def test_data_at_another_frequency_is_refused(fitted):
    fc, frame = fitted
    import pandas as pd

    daily = frame.assign(date=pd.date_range("2020-01-01", periods=len(frame), freq="D"))
    with pytest.raises(DataError, match="frequency 'D', but the model was trained on 'h'"):
        fc.predict(daily)
