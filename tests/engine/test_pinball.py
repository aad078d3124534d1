"""The pinball loss and training a quantile head with it."""

import numpy as np
import pytest
import torch
from torch import nn

from lstmcast.config import make_config
from lstmcast.engine.batching import predict_windows
from lstmcast.engine.training import PinballLoss, make_loss, train
from lstmcast.models import build


def test_pinball_loss_against_a_hand_computation() -> None:
    loss = make_loss("mse", (0.1, 0.5, 0.9))
    assert isinstance(loss, PinballLoss)
    target = torch.tensor([[[1.0]], [[3.0]]])  # (B=2, H=1, V=1)
    pred = torch.tensor([[[[0.0, 1.0, 2.0]]], [[[2.0, 4.0, 5.0]]]])  # (2, 1, 1, Q=3)
    # errors e = target - pred: [1, 0, -1] and [1, -1, -2]; each term max(tau*e, (tau-1)*e)
    by_hand = [
        0.1 * 1,  # e=1, tau 0.1
        0.0,  # e=0, tau 0.5
        0.1 * 1,  # e=-1, tau 0.9: (0.9-1)*(-1)
        0.1 * 1,  # e=1, tau 0.1
        0.5 * 1,  # e=-1, tau 0.5
        0.1 * 2,  # e=-2, tau 0.9
    ]
    assert loss(pred, target).item() == pytest.approx(sum(by_hand) / 6)


def test_pinball_loss_weights_under_and_over_prediction_by_the_level() -> None:
    target = torch.zeros(4, 2, 3)
    loss = PinballLoss((0.25,))
    assert loss(torch.full((4, 2, 3, 1), -2.0), target).item() == pytest.approx(0.25 * 2)
    assert loss(torch.full((4, 2, 3, 1), 2.0), target).item() == pytest.approx(0.75 * 2)
    median = PinballLoss((0.5,))
    pred, target = torch.randn(5, 3, 2, 1), torch.randn(5, 3, 2)
    torch.testing.assert_close(median(pred, target), 0.5 * nn.L1Loss()(pred[..., 0], target))


def test_pinball_loss_checks_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"needs predictions \(2, 3, 4, 3\).*Got \(2, 3, 4\)"):
        PinballLoss((0.1, 0.5, 0.9))(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))


def test_point_losses_are_unchanged() -> None:
    assert type(make_loss("mse")) is nn.MSELoss
    assert type(make_loss("mae", ())) is nn.L1Loss
    huber = make_loss("huber")
    assert type(huber) is nn.HuberLoss and huber.delta == 1.0


def noisy_sine(n: int = 1600, seed: int = 0) -> tuple[np.ndarray, torch.Tensor]:
    """y = sin(2 pi t / 24) + N(0, 0.3): the 0.1 and 0.9 quantiles are sin -/+ 0.38."""
    rng = np.random.default_rng(seed)
    y = np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 0.3, n)
    return y, torch.tensor(y, dtype=torch.float32)[:, None]


def test_a_quantile_head_learns_the_noise_band() -> None:
    """Trained with the pinball loss, the 0.1/0.9 quantiles cover about 80% of new points."""
    y, series = noisy_sine()
    lookback, taus = 24, (0.1, 0.5, 0.9)
    config = make_config(
        {"lookback": lookback, "epochs": 6, "batch_size": 64, "lr": 0.01, "patience": 0}
    )
    torch.manual_seed(0)
    model = build("lstm", 1, lookback=lookback, quantiles=taus, layers=(16,))
    val = np.arange(1000, 1250)
    result = train(model, series, np.arange(0, 1000), val, config, n_targets=1)

    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.75 * losses[0]
    assert result.best_epoch > 0  # better than the initial weights
    # early stopping scored the pinball loss of the validation windows
    forecasts = torch.from_numpy(predict_windows(model, series, val, lookback))  # (N, 1, 1, Q)
    targets = series[val + lookback][:, None]  # (N, 1, 1)
    pinball = PinballLoss(taus)(forecasts, targets).item()
    assert result.best_val_loss == pytest.approx(pinball, rel=1e-4)

    test = np.arange(1250, len(y) - lookback)
    q = predict_windows(model, series, test, lookback)
    assert q.shape == (len(test), 1, 1, 3)
    actual = y[test + lookback]
    covered = np.mean((q[:, 0, 0, 0] <= actual) & (actual <= q[:, 0, 0, 2]))
    assert 0.65 <= covered <= 0.93
    width = np.mean(q[:, 0, 0, 2] - q[:, 0, 0, 0])
    assert 0.4 < width < 1.3  # the true band is 2 * 1.2816 * 0.3 = 0.77 wide


def test_the_pinball_loss_replaces_the_loss_option() -> None:
    _, series = noisy_sine(300)
    histories = []
    for loss in ("mse", "mae"):
        config = make_config({"lookback": 12, "epochs": 2, "loss": loss, "patience": 0})
        torch.manual_seed(0)
        model = build("lstm", 1, lookback=12, quantiles=(0.2, 0.5, 0.8), layers=(4,))
        result = train(model, series, np.arange(0, 200), np.arange(200, 280), config, n_targets=1)
        histories.append([(row["train_loss"], row["val_loss"]) for row in result.history])
    assert histories[0] == histories[1]
