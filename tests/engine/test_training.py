import math

import numpy as np
import pytest
import torch
from torch import nn

from lstmcast.config import make_config
from lstmcast.engine.steps import batches, epoch_order
from lstmcast.engine.training import train


class Recorder(nn.Module):
    """Predicts x[-1] * w and records which windows it saw in training mode."""

    def __init__(self, horizon: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.horizon = horizon
        self.seen: list[list[int]] = []

    def forward(self, x):
        if self.training:
            self.seen.append(x[:, 0, 0].round().long().tolist())
        return (x[:, -1:, :1] * self.weight).repeat(1, self.horizon, 1)


def test_sampler_visits_each_training_window_exactly_once_per_epoch():
    series = torch.arange(200, dtype=torch.float32)[:, None]  # value == row index
    train_starts = np.arange(5, 150)  # 145 windows: 4 full batches of 32 and a partial of 17
    config = make_config({"lookback": 4, "epochs": 3, "batch_size": 32, "patience": 0})
    model = Recorder()
    train(model, series, train_starts, np.arange(150, 190), config, n_targets=1)
    per_epoch = 5  # batches per epoch
    assert len(model.seen) == 3 * per_epoch
    orders = []
    for epoch in range(3):
        seen = [
            s for batch in model.seen[epoch * per_epoch : (epoch + 1) * per_epoch] for s in batch
        ]
        assert sorted(seen) == list(train_starts)
        orders.append(seen)
    assert orders[0] != orders[1]  # reshuffled every epoch


def test_batches_keep_the_partial_last_batch():
    order = epoch_order(70, torch.Generator().manual_seed(0))
    parts = batches(order, 32)
    assert [len(p) for p in parts] == [32, 32, 6]
    assert sorted(torch.cat(parts).tolist()) == list(range(70))


def _fit(seed: int, **options):
    torch.manual_seed(seed)
    rng = np.random.default_rng(0)
    series = torch.from_numpy(rng.normal(size=(300, 3)).astype(np.float32)).cumsum(0) / 10
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 3, 2 * 3), nn.Unflatten(1, (2, 3)))
    values = {"lookback": 8, "horizon": 2, "epochs": 4, "seed": seed, "patience": 0, **options}
    config = make_config(values)
    result = train(model, series, np.arange(0, 200), np.arange(200, 290), config, n_targets=3)
    return model, result


def test_seed_repeats_bit_for_bit_on_cpu():
    model_a, result_a = _fit(seed=3)
    model_b, result_b = _fit(seed=3)
    losses = [(h["train_loss"], h["val_loss"]) for h in result_a.history]
    assert losses == [(h["train_loss"], h["val_loss"]) for h in result_b.history]
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    _, result_c = _fit(seed=4)
    assert [h["train_loss"] for h in result_c.history] != [
        h["train_loss"] for h in result_a.history
    ]


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd"])
@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_optimizers_and_losses_reduce_the_loss(optimizer, loss):
    _, result = _fit(seed=0, optimizer=optimizer, loss=loss, lr=0.01, epochs=3)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] * 1.01
    assert all(math.isfinite(h["val_loss"]) for h in result.history)


def test_best_weights_are_restored():
    _model, result = _fit(seed=0, epochs=6)
    assert result.best_epoch == min(result.history, key=lambda h: h["val_loss"])["epoch"]
    assert result.best_val_loss == min(h["val_loss"] for h in result.history)


def test_divergence_stops_with_a_message_and_keeps_finite_weights():
    model, result = _fit(seed=0, lr=1e6, clip_norm=0.0, optimizer="sgd", epochs=5)
    assert result.stopped == "diverged"
    # two restarts at lr / 4 and lr / 16 diverge too, then it stops
    assert [h["lr"] for h in result.history] == [1e6, 2.5e5, 6.25e4]
    assert result.message.count("restarted from epoch 0's weights") == 2
    assert "diverged in epoch 3" in result.message and "--clip-norm 1.0" in result.message
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_no_divergence_retries_stops_at_once():
    _, result = _fit(seed=0, lr=1e6, clip_norm=0.0, optimizer="sgd", divergence_retries=0)
    assert result.stopped == "diverged" and len(result.history) == 1
    assert "--divergence-retries 2" in result.message


LR_UNSTABLE = 2.0


def test_divergence_is_undone_and_training_goes_on_at_a_smaller_lr():
    # plain SGD on this least-squares problem blows up at once at lr 2 and trains at 0.5
    model, result = _fit(seed=0, lr=LR_UNSTABLE, clip_norm=0.0, optimizer="sgd", epochs=4)
    first, *rest = result.history
    assert not math.isfinite(first["val_loss"])  # epoch 1 blew up ...
    assert [h["lr"] for h in rest] == [LR_UNSTABLE / 4] * 3  # ... and was undone
    assert all(math.isfinite(h["val_loss"]) for h in rest)
    assert result.stopped == "completed" and result.best_epoch > 0
    assert result.best_val_loss < rest[0]["val_loss"] * 1.0001  # it trained after the restart
    assert "epoch 1 diverged" in result.message
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_early_stopping_with_patience():
    _, result = _fit(seed=0, lr=1e-9, optimizer="sgd", epochs=30, patience=2)
    assert result.stopped == "early_stopping"
    assert len(result.history) < 30


def test_training_leaves_each_parameter_its_own_storage():
    # on the CPU the parameters are views of one flat buffer while training (steps.FlatParameters)
    model, _ = _fit(seed=0, epochs=2)
    params = list(model.parameters())
    assert len({p.untyped_storage().data_ptr() for p in params}) == len(params)
    assert all(p.grad is None for p in params)


def test_parameters_of_mixed_dtypes_train_without_the_flat_buffer():
    torch.manual_seed(0)
    series = torch.randn(120, 1)
    model = Recorder()
    model.offset = nn.Parameter(torch.zeros(1, dtype=torch.float64))  # unused, other dtype
    config = make_config({"lookback": 4, "epochs": 2, "batch_size": 16, "patience": 0})
    result = train(model, series, np.arange(0, 80), np.arange(80, 110), config, n_targets=1)
    assert len(result.history) == 2 and math.isfinite(result.history[-1]["train_loss"])
    assert model.weight.dtype == torch.float32 and model.offset.dtype == torch.float64


def test_callbacks_see_every_epoch_and_set_the_learning_rate(capsys):
    series = torch.arange(200, dtype=torch.float32)[:, None] / 200
    config = make_config({"lookback": 4, "epochs": 4, "batch_size": 32, "patience": 0, "lr": 0.1})
    seen = []

    def halve(epoch):  # a schedule through the seam: the optimizer of the next epoch
        seen.append((epoch.number, epoch.lr, epoch.kept, epoch.epochs))
        for group in epoch.optimizer.param_groups:
            group["lr"] = group["lr"] * 0.5

    result = train(
        Recorder(),
        series,
        np.arange(0, 150),
        np.arange(150, 190),
        config,
        n_targets=1,
        callbacks=[halve],
    )
    assert [row["lr"] for row in result.history] == [0.1, 0.05, 0.025, 0.0125]
    assert seen == [
        (1, 0.1, True, 4),
        (2, 0.05, True, 4),
        (3, 0.025, True, 4),
        (4, 0.0125, True, 4),
    ]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # the loop prints nothing


def test_divergence_on_unscaled_data_names_the_data_not_the_learning_rate():
    import numpy as np
    import pandas as pd

    from lstmcast.workflows.forecaster import Forecaster

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200) * 1e30, "b": rng.normal(size=200)})
    fc = Forecaster("simple", lookback=5, epochs=3, scaler="none", seed=0).fit(frame)
    assert fc.training_.stopped == "diverged"
    assert "inputs reach 2.4e+30 after scaling (--scaler none)" in fc.training_.message
    assert "--lr" not in fc.training_.message.rsplit(";", 1)[-1]
