import copy

import pytest
import torch
from torch import nn

from lstmcast import models
from lstmcast.config import make_config
from lstmcast.steps import FlatParameters
from lstmcast.training import make_optimizer


def _step(model, params, optimizer, x, y, clip_norm, flat=None):
    loss = nn.functional.mse_loss(model(x), y)
    if flat is None:
        optimizer.zero_grad(set_to_none=True)
    else:
        flat.zero_grad()
    loss.backward()
    if flat is None:
        nn.utils.clip_grad_norm_(params, clip_norm)
    else:
        flat.clip_(clip_norm)
    optimizer.step()


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
    for _ in range(5):
        x, y = torch.randn(8, 6, 3), torch.randn(8, 2, 3)
        torch.manual_seed(1)  # the same dropout masks for both
        _step(model, params, reference, x, y, clip_norm)
        torch.manual_seed(1)
        _step(twin, twin_params, optimizer_flat, x, y, clip_norm, flat)
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
