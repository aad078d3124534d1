"""Baselines give the values they promise."""

import re

import pytest
import torch

from lstmcast.errors import ConfigError
from lstmcast.models import (
    BaselineConfig,
    LinearBaseline,
    LinearConfig,
    Mean,
    SeasonalNaive,
    SeasonalNaiveConfig,
    build,
)


def ramp(B: int, L: int, F: int) -> torch.Tensor:
    """x[b, t, f] = 1000 b + 10 t + f: every entry names its own position."""
    b, t, f = torch.meshgrid(torch.arange(B), torch.arange(L), torch.arange(F), indexing="ij")
    return (1000 * b + 10 * t + f).float()


def test_repeat_last_repeats_the_last_targets() -> None:
    x = ramp(2, 5, 4)
    y = build("repeat_last", 4, horizon=3, n_targets=2)(x)
    assert y.shape == (2, 3, 2)
    expected = x[:, -1, :2].unsqueeze(1).expand(2, 3, 2)
    assert torch.equal(y, expected)
    assert y[1, 2, 1].item() == 1000 + 40 + 1


def test_seasonal_naive_reads_one_period_back_and_wraps() -> None:
    x = ramp(2, 48, 3)
    model = build("seasonal_naive", 3, horizon=30, n_targets=2, lookback=48, period=24)
    y = model(x)
    assert y.shape == (2, 30, 2)
    for h in range(30):
        assert torch.equal(y[:, h], x[:, 48 - 24 + h % 24, :2]), h
    assert y[0, 0, 0].item() == 240  # step 0 = t 24 (one day before t 48)
    assert y[0, 25, 1].item() == 251  # step 25 wraps to t 25


def test_seasonal_naive_needs_a_lookback_of_at_least_one_period() -> None:
    model = SeasonalNaive(SeasonalNaiveConfig(n_features=2, period=24))
    with pytest.raises(
        ConfigError, match=re.escape("'period' parameter (24) must be <= the lookback (12).")
    ):
        model(torch.zeros(1, 12, 2))
    with pytest.raises(ConfigError, match=r"\(24\) must be <= the lookback \(12\)"):
        build("seasonal_naive", 2, lookback=12)
    with pytest.raises(
        ConfigError, match=re.escape("The 'period' parameter must be an int >= 1. Got 0 instead.")
    ):
        build("seasonal_naive", 2, period=0)


def test_mean_predicts_the_train_mean() -> None:
    model = build("mean", 3, horizon=2, n_targets=2)
    assert isinstance(model, Mean)
    x = ramp(4, 6, 3)
    assert torch.equal(model(x), torch.zeros(4, 2, 2))
    model.set_train_mean(torch.tensor([1.5, -2.0]))
    assert torch.equal(model(x), torch.tensor([1.5, -2.0]).expand(4, 2, 2))
    assert torch.equal(model.state_dict()["mean"], torch.tensor([1.5, -2.0]))
    with pytest.raises(ConfigError, match=r"'mean' parameter must have shape \(2,\). Got \(3,\)"):
        model.set_train_mean(torch.zeros(3))


def test_baselines_without_training_have_no_parameters() -> None:
    for model in (
        build("repeat_last", 3),
        build("seasonal_naive", 3),
        Mean(BaselineConfig(n_features=3)),
    ):
        assert list(model.parameters()) == []


def test_linear_is_one_dense_layer_on_the_flattened_window() -> None:
    torch.manual_seed(0)
    model = LinearBaseline(LinearConfig(n_features=3, lookback=4, horizon=2, n_targets=1))
    weight, bias = model.linear.weight, model.linear.bias
    assert weight.shape == (2, 12) and torch.equal(bias.detach(), torch.zeros(2))
    assert weight.abs().max() <= (6 / (12 + 2)) ** 0.5  # glorot_uniform limit
    with torch.no_grad():
        bias.copy_(torch.tensor([0.5, -0.5]))
        x = torch.randn(5, 4, 3)
        expected = (x.reshape(5, 12) @ weight.T + bias).reshape(5, 2, 1)
        torch.testing.assert_close(model(x), expected)
    with pytest.raises(ConfigError, match=r"'lookback' parameter \(4\) must equal .* \(6\)"):
        model(torch.randn(5, 6, 3))


def test_linear_needs_a_lookback() -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape("The 'lookback' parameter must be an int >= 1. Got None instead."),
    ):
        build("linear", 3)
