"""The quantile head: (B, H, T, Q) forecasts that never cross, for the lstm family and seglstm."""

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmcast.errors import ConfigError, ModelFileError
from lstmcast.models import (
    MODELS,
    LSTMConfig,
    SegLSTMConfig,
    build,
    config_dict,
    from_config_dict,
    supports_quantiles,
)
from lstmcast.models.lstm import quantile_outputs, spread_bias

TAUS = (0.025, 0.1, 0.5, 0.9, 0.975)
QUANTILE_MODELS = ["lstm", "simple", "stacked", "bidirectional", "seglstm"]

# name -> (build overrides kept small so the tests stay fast, lookback)
SMALL: dict[str, dict] = {
    "lstm": dict(layers=(6, 5)),
    "lstm-revin": dict(layers=(6,), revin=True),
    "simple": {},
    "stacked": {},
    "bidirectional": {},
    "seglstm": dict(segment=6, hidden=8, dropout=0.0),
    "seglstm-mean": dict(segment=6, hidden=8, dropout=0.0, revin_mode="mean"),
    "seglstm-plain": dict(segment=6, hidden=8, dropout=0.0, revin=False),
}


def small(
    key: str, quantiles=TAUS, *, horizon: int = 3, lookback: int = 20, seed: int = 0, **extra
) -> torch.nn.Module:
    torch.manual_seed(seed)
    name = key.split("-")[0]
    model = build(
        name, 4, horizon, 2, lookback=lookback, quantiles=quantiles, **{**SMALL[key], **extra}
    )
    return model.eval()


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)  # as Keras counts


def test_supports_quantiles_names_the_models_with_a_quantile_field() -> None:
    assert [name for name in MODELS if supports_quantiles(name)] == QUANTILE_MODELS
    assert not supports_quantiles("transformer")


@pytest.mark.parametrize("name", [n for n in MODELS if n not in QUANTILE_MODELS])
def test_other_models_reject_quantiles(name: str) -> None:
    expected = f"Unknown parameter 'quantiles' for model {name!r}. Allowed:"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        build(name, 3, lookback=24, quantiles=(0.1, 0.5, 0.9))
    build(name, 3, lookback=24, quantiles=())  # no head asked for: nothing to reject


@pytest.mark.parametrize("key", list(SMALL))
@pytest.mark.parametrize(("lookback", "horizon"), [(20, 3), (17, 7)])  # 17, 7: not multiples of 6
def test_shapes(key: str, lookback: int, horizon: int) -> None:
    model = small(key, lookback=lookback, horizon=horizon)
    y = model(torch.randn(5, lookback, 4))
    assert y.shape == (5, horizon, 2, len(TAUS))
    assert torch.isfinite(y).all()
    assert model.quantiles == TAUS


@pytest.mark.parametrize("key", list(SMALL))
def test_the_median_starts_as_the_point_models_output(key: str) -> None:
    """Same seed, same draws: the median channel is the point model's forecast at init."""
    point, quantile = small(key, ()), small(key)
    x = torch.randn(3, 20, 4)
    with torch.no_grad():
        assert torch.equal(quantile(x)[..., TAUS.index(0.5)], point(x))
    point_state = point.state_dict()
    assert all(torch.equal(quantile.state_dict()[k], v) for k, v in point_state.items())


def test_the_head_is_the_point_head_widened_to_q_outputs() -> None:
    for name, inputs in (("simple", 50), ("stacked", 32), ("bidirectional", 100)):
        point, quantile = build(name, 3, horizon=2), build(name, 3, horizon=2, quantiles=TAUS)
        extra = (len(TAUS) - 1) * (inputs * 2 * 3 + 2 * 3)  # Dense(inputs, H*T) per extra level
        assert n_params(quantile) == n_params(point) + extra
        assert not any(k.startswith("spread") for k in point.state_dict())
    point, quantile = small("seglstm", ()), small("seglstm")
    assert n_params(quantile) - n_params(point) == (len(TAUS) - 1) * (8 * 6 + 6)  # Linear(D, S)


@pytest.mark.parametrize("name", ["simple", "stacked", "bidirectional"])
def test_presets_without_quantiles_keep_their_keras_parameter_counts(name: str) -> None:
    lstm = {"simple": 4 * (50 * (3 + 50) + 50), "stacked": 4 * (64 * 67 + 64) + 4 * (32 * 96 + 32)}
    lstm["bidirectional"] = 2 * lstm["simple"]
    dense = {"simple": 50 * 3 + 3, "stacked": 32 * 3 + 3, "bidirectional": 100 * 3 + 3}
    assert n_params(build(name, 3)) == lstm[name] + dense[name]
    assert n_params(build(name, 3, quantiles=())) == lstm[name] + dense[name]


def test_a_median_only_head_is_the_median() -> None:
    for key in ("lstm", "seglstm"):
        point, median = small(key, ()), small(key, (0.5,))
        x = torch.randn(2, 20, 4)
        with torch.no_grad():
            assert torch.equal(median(x)[..., 0], point(x))


@settings(max_examples=12, deadline=None)
@given(
    key=st.sampled_from(list(SMALL)),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1e-3, 1.0, 1e2, 1e4]),
    shift=st.sampled_from([0.0, -1e4, 1e4]),
)
def test_quantiles_never_cross_for_random_weights_and_inputs(key, seed, scale, shift) -> None:
    model = small(key, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 20, 4, generator=generator) * scale + shift
    with torch.no_grad():
        y = model(x)
    assert torch.isfinite(y).all()
    assert (y.diff(dim=-1) >= 0).all()


@settings(max_examples=20, deadline=None)
@given(
    values=st.lists(
        st.floats(-(2.0**100), 2.0**100, width=32), min_size=len(TAUS), max_size=len(TAUS)
    ),
    median=st.floats(-(2.0**20), 2.0**20, width=32),
)
def test_the_construction_is_monotone_for_any_raw_outputs(values, median) -> None:
    spread = torch.tensor(values[1:], dtype=torch.float32)
    y = quantile_outputs(torch.tensor(median, dtype=torch.float32), spread, TAUS)
    assert y[TAUS.index(0.5)] == median
    assert (y.diff() >= 0).all()


def test_the_initial_band_is_a_standard_normal_around_the_median() -> None:
    gaps = torch.nn.functional.softplus(spread_bias(TAUS))
    expected = np.diff([-1.959964, -1.281552, 0.0, 1.281552, 1.959964])
    np.testing.assert_allclose(gaps.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("key", ["lstm-revin", "seglstm", "seglstm-mean"])
def test_instance_normalisation_is_undone_on_every_quantile(key: str) -> None:
    model = small(key)
    x = torch.randn(3, 20, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x + 10.0), model(x) + 10.0, atol=1e-4, rtol=1e-5)
        if key == "seglstm-mean":  # mean/std: scaling the window scales every quantile
            torch.testing.assert_close(model(3 * x), 3 * model(x), atol=1e-4, rtol=1e-4)


def test_gradients_reach_the_spread() -> None:
    for key in ("lstm", "seglstm"):
        model = small(key).train()
        model(torch.randn(4, 20, 4)).square().mean().backward()
        assert all(
            p.grad is not None and p.grad.abs().sum() > 0
            for p in model.get_submodule("spread").parameters()
        )


@pytest.mark.parametrize(
    ("quantiles", "match"),
    [
        (
            (0.1, 0.9),
            "The 'quantiles' parameter must include 0.5 (the point forecast). Got (0.1, 0.9)",
        ),
        (
            (0.9, 0.5, 0.1),
            "The 'quantiles' parameter must be strictly increasing, without repeats.",
        ),
        ((0.1, 0.5, 0.5, 0.9), "must be strictly increasing, without repeats. Got (0.1, 0.5, 0.5"),
        ((0.0, 0.5), "The 'quantiles' parameter must be a tuple of levels in (0, 1), e.g."),
        ((0.5, 1.0), "a tuple of levels in (0, 1), e.g. (0.1, 0.5, 0.9). Got (0.5, 1.0) instead."),
        ((0.5, True), "The 'quantiles' parameter must be a tuple of levels in (0, 1)"),
        ((0.5, "0.9"), "The 'quantiles' parameter must be a tuple of levels in (0, 1)"),
        (0.5, "The 'quantiles' parameter must be a tuple of levels in (0, 1)"),
    ],
)
def test_config_rejects_bad_quantiles(quantiles, match: str) -> None:
    for config in (LSTMConfig, lambda **kw: SegLSTMConfig(lookback=24, **kw)):
        with pytest.raises(ConfigError, match=re.escape(match)) as info:
            config(n_features=3, quantiles=quantiles)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=re.escape(match)):
        build("simple", 3, quantiles=quantiles)


def test_config_normalises_quantiles_to_a_tuple_of_floats() -> None:
    config = LSTMConfig(n_features=2, quantiles=[np.float32(0.25), 0.5, 1 / 4 + 0.5])  # type: ignore[arg-type]
    assert config.quantiles == (0.25, 0.5, 0.75)
    assert all(type(q) is float for q in config.quantiles)
    assert LSTMConfig(n_features=2).quantiles == SegLSTMConfig(2, 24).quantiles == ()


@pytest.mark.parametrize("key", ["lstm-revin", "bidirectional", "seglstm-mean"])
def test_config_dict_round_trip_with_quantiles(key: str) -> None:
    model = small(key)
    description = json.loads(json.dumps(config_dict(model)))
    assert description["quantiles"] == list(TAUS)
    torch.manual_seed(123)  # other initial weights
    rebuilt = from_config_dict(description)
    assert rebuilt.config == model.config and rebuilt.quantiles == TAUS
    assert config_dict(rebuilt) == description
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    x = torch.randn(2, 20, 4)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


def test_point_models_are_described_as_before() -> None:
    """No 'quantiles' key without a head, so point model files are unchanged."""
    assert "quantiles" not in config_dict(small("lstm", ()))
    assert "quantiles" not in config_dict(small("seglstm", ()))


def test_from_config_dict_rejects_bad_quantiles() -> None:
    description = {"name": "simple", "n_features": 3, "quantiles": [0.9, 0.1]}
    with pytest.raises(ModelFileError, match="invalid: The 'quantiles' parameter must be strictly"):
        from_config_dict(description)
