"""seglstm: shapes, instance normalisation, segment handling, config round trip."""

import json
import re

import pytest
import torch

from lstmcast.errors import ConfigError
from lstmcast.models import SegLSTM, SegLSTMConfig, build, config_dict, from_config_dict


def small(**overrides) -> SegLSTM:
    torch.manual_seed(0)
    options = {"lookback": 24, "segment": 6, "hidden": 16, **overrides}
    lookback = options.pop("lookback")
    n_features, horizon = options.pop("n_features", 5), options.pop("horizon", 7)
    n_targets = options.pop("n_targets", 2)
    model = build("seglstm", n_features, horizon, n_targets, lookback, **options)
    return model.eval()


@pytest.mark.parametrize(("lookback", "horizon", "segment"), [(24, 12, 6), (20, 7, 6), (5, 3, 8)])
def test_shapes_with_covariates_and_uneven_segments(lookback, horizon, segment):
    model = small(lookback=lookback, horizon=horizon, segment=segment)
    y = model(torch.randn(4, lookback, 5))
    assert y.shape == (4, horizon, 2)
    assert torch.isfinite(y).all()


def test_only_the_targets_matter():
    model = small()
    x = torch.randn(3, 24, 5)
    changed = x.clone()
    changed[:, :, 2:] += torch.randn(3, 24, 3)  # covariates
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(changed))


@pytest.mark.parametrize("mode", ["last", "mean"])
def test_instance_normalisation_shifts_the_output_with_the_input(mode):
    model = small(revin_mode=mode)
    x = torch.randn(3, 24, 5)
    with torch.no_grad():
        torch.testing.assert_close(model(x + 10.0), model(x) + 10.0, atol=1e-4, rtol=1e-5)
    plain = small(revin=False)
    with torch.no_grad():
        assert not torch.allclose(plain(x + 10.0), plain(x) + 10.0, atol=1e-2)


def test_the_decoder_equals_one_step_of_the_shared_lstm():
    model = small(lookback=24, horizon=12, segment=6, dropout=0.0, n_targets=5)
    x = torch.randn(2, 24, 5)
    B, T, S, M = 2, 5, 6, 2
    with torch.no_grad():
        z = x - x[:, -1:]
        e = model.embed(z.permute(0, 2, 1).reshape(B * T, 4, S))
        _, (h, c) = model.lstm(e)
        queries = torch.cat(
            [model.position[None].expand(T, -1, -1), model.channel[:, None].expand(-1, M, -1)],
            dim=-1,
        )
        queries = queries.reshape(1, T * M, -1).expand(B, -1, -1).reshape(B * T * M, 1, -1)
        state = (h.repeat_interleave(M, dim=1), c.repeat_interleave(M, dim=1))
        _, (h_out, _) = model.lstm(queries, state)
        expected = model.head(h_out[0]).view(B, T, M * S).permute(0, 2, 1) + x[:, -1:]
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


def test_trains_like_any_module():
    model = small().train()
    model(torch.randn(4, 24, 5)).square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"segment": 0}, "The 'segment' parameter must be an int >= 1. Got 0 instead."),
        ({"segment": 2.5}, "The 'segment' parameter must be an int >= 1. Got 2.5 instead."),
        ({"hidden": 1}, "The 'hidden' parameter must be an int >= 2. Got 1 instead."),
        ({"dropout": 1.0}, "The 'dropout' parameter must be a float in [0, 1). Got 1.0 instead."),
        ({"revin": "yes"}, "The 'revin' parameter must be a bool. Got 'yes' instead."),
        ({"revin_mode": "median"}, "'revin_mode' parameter must be one of last, mean."),
    ],
)
def test_invalid_options_name_the_parameter(overrides, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        small(**overrides)


def test_needs_a_lookback_and_checks_the_window_length():
    with pytest.raises(ConfigError, match=r"'lookback' parameter must be an int >= 1\. Got None"):
        build("seglstm", 3, horizon=2)
    with pytest.raises(ConfigError, match=r"'lookback' parameter \(24\) must equal .* \(12\)"):
        small()(torch.randn(1, 12, 5))


def test_config_dict_round_trip():
    model = small(revin_mode="mean", dropout=0.1)
    description = json.loads(json.dumps(config_dict(model)))
    assert description == {
        "name": "seglstm",
        "n_features": 5,
        "lookback": 24,
        "horizon": 7,
        "n_targets": 2,
        "segment": 6,
        "hidden": 16,
        "dropout": 0.1,
        "revin": True,
        "revin_mode": "mean",
    }
    rebuilt = from_config_dict(description)
    assert isinstance(rebuilt, SegLSTM) and rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    x = torch.randn(2, 24, 5)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


def test_defaults():
    config = SegLSTMConfig(n_features=7, lookback=96, horizon=96)
    assert (config.segment, config.hidden, config.revin, config.n_targets) == (24, 512, True, 7)
