import copy

import pytest
import torch
from torch import nn

from lstmcast import models
from lstmcast.config import make_config
from lstmcast.engine.steps import FlatParameters, make_step
from lstmcast.engine.training import make_optimizer


def _stepper(model, params, optimizer, clip_norm, flat=None):
    """lstmcast's own step (steps.make_step) on batches given directly as (x, y)."""
    batch = {}

    def batch_loss(starts):
        return nn.functional.mse_loss(model(batch["x"]), batch["y"])

    step = make_step(params, optimizer, batch_loss, torch.zeros(()), clip_norm, flat=flat)

    def run(x, y):
        batch.update(x=x, y=y)
        step(torch.arange(len(x)))

    return run


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("clip_norm", [0.05, 1e3])  # clipping every step / never
def test_flat_parameters_train_like_the_separate_tensors(optimizer, clip_norm):
    torch.manual_seed(0)
    model = models.build("stacked", 3, horizon=2, activation="tanh")
    twin = copy.deepcopy(model)
    config = make_config({"optimizer": optimizer, "lr": 0.01})
    params = [p for p in model.parameters() if p.requires_grad]
    reference = make_optimizer(params, config)
    twin_params = [p for p in twin.parameters() if p.requires_grad]
    flat = FlatParameters(twin_params)
    optimizer_flat = make_optimizer([flat.data], config)
    start = flat.data.clone()
    step = _stepper(model, params, reference, clip_norm)
    step_flat = _stepper(twin, twin_params, optimizer_flat, clip_norm, flat)
    for _ in range(5):
        x, y = torch.randn(8, 6, 3), torch.randn(8, 2, 3)
        torch.manual_seed(1)  # the same dropout masks for both
        step(x, y)
        torch.manual_seed(1)
        step_flat(x, y)
    for a, b in zip(params, twin_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert b.data_ptr() != a.data_ptr()
    assert not torch.allclose(flat.data, start)  # it trained


def test_flat_parameters_are_views_until_released():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    params = list(model.parameters())
    flat = FlatParameters(params)
    assert flat.data.numel() == sum(p.numel() for p in params)
    flat.data.fill_(0.5)
    assert all(bool((p == 0.5).all()) for p in params)
    model(torch.ones(1, 3)).sum().backward()
    assert flat.grad.abs().sum() > 0  # autograd wrote into the views
    flat.release()
    storages = {p.untyped_storage().data_ptr() for p in params}
    assert len(storages) == len(params)  # each parameter owns its storage again
    assert all(p.grad is None for p in params)
    flat.data.fill_(0.0)
    assert all(bool((p == 0.5).all()) for p in params)
