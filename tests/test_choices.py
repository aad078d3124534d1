"""Each enumerated option exists once (lstmcast.choices); the layers that implement a set
agree with it."""

import torch

from lstmcast import choices, models
from lstmcast.config import make_config
from lstmcast.data import scale, validate
from lstmcast.engine.training import make_loss, make_optimizer
from lstmcast.workflows.tuning import study


def test_model_names_are_the_registry():
    assert choices.values(choices.Model) == tuple(models.MODELS)


def test_data_layer_sets_come_from_the_enums():
    assert choices.values(choices.Fill) == validate.FILLS
    assert choices.values(choices.ScalerKind) == scale.KINDS
    assert choices.values(choices.Pruner) == study.PRUNERS


def test_every_optimizer_and_loss_builds():
    params = [torch.nn.Parameter(torch.zeros(2))]
    for name in choices.values(choices.Optimizer):
        assert isinstance(
            make_optimizer(params, make_config({"optimizer": name})), torch.optim.Optimizer
        )
    for name in choices.values(choices.Loss):
        assert isinstance(make_loss(name), torch.nn.Module)


def test_an_enum_member_is_stored_as_plain_text():
    config = make_config({"optimizer": choices.Optimizer.adamw, "fill": choices.Fill.ffill})
    assert type(config.optimizer) is str and config.to_dict()["fill"] == "ffill"
