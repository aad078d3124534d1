"""The registry: build every model, describe it as JSON and rebuild it."""

import json
import pkgutil
import re
import types

import pytest
import torch

import lstmcast.models as package
from lstmcast.errors import ConfigError, ModelFileError
from lstmcast.models import MODELS, build, config_dict, from_config_dict, is_trainable

NAMES = list(MODELS)
TRAINABLE = {"lstm", "simple", "stacked", "bidirectional", "linear", "seglstm"}


def test_registry_names() -> None:
    assert set(NAMES) == TRAINABLE | {"repeat_last", "seasonal_naive", "mean"}
    assert all(isinstance(text, str) and text and "\n" not in text for text in MODELS.values())


def test_no_name_in_the_package_shadows_one_of_its_submodules() -> None:
    # `lstmcast.models.seglstm` was the registry's factory function, so `import
    # lstmcast.models.seglstm as m` or a monkeypatch of "lstmcast.models.seglstm.X" got it
    names = [info.name for info in pkgutil.iter_modules(package.__path__)]
    assert "seglstm" in names
    for name in names:
        assert isinstance(getattr(package, name, types.ModuleType(name)), types.ModuleType), name


@pytest.mark.parametrize("name", NAMES)
def test_every_model_forecasts_the_targets_from_a_window_with_covariates(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, n_features=5, horizon=3, n_targets=2, lookback=24)
    y = model(torch.randn(4, 24, 5))
    assert y.shape == (4, 3, 2)
    assert torch.isfinite(y).all()
    assert is_trainable(model) == (name in TRAINABLE)
    assert model.config.n_targets == 2


@pytest.mark.parametrize("name", NAMES)
def test_n_targets_defaults_to_all_features(name: str) -> None:
    model = build(name, n_features=3, lookback=24)
    assert model(torch.randn(2, 24, 3)).shape == (2, 1, 3)


def test_unknown_model_lists_the_names() -> None:
    expected = "Unknown model 'transformer'. Choose one of: lstm, simple, stacked, bidirectional,"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        build("transformer", 3)


def test_unknown_override_names_the_key_and_the_allowed_fields() -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Unknown parameter 'units' for model 'simple'. "
            "Allowed: layers, bidirectional, dropout, activation, revin, members, reduce."
        ),
    ):
        build("simple", 3, units=64)
    expected = "Unknown parameter 'dropout' for model 'mean'. Allowed: none."
    with pytest.raises(ConfigError, match=re.escape(expected)):
        build("mean", 3, dropout=0.1)


def test_presets_accept_overrides() -> None:
    model = build("simple", 7, activation="tanh")
    assert model.config.activation == "tanh"
    assert model.config.layers == (50,)
    assert model.layers[0].fused
    stacked = build("stacked", 7, dropout=0.1)
    assert stacked.config.layers == (64, 32) and stacked.config.dropout == 0.1
    with pytest.raises(ConfigError, match="'dropout'"):
        build("stacked", 7, dropout=1.0)


@pytest.mark.parametrize("name", NAMES)
def test_config_dict_round_trip(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, n_features=4, horizon=2, n_targets=3, lookback=30)
    if name == "mean":
        model.set_train_mean(torch.tensor([1.0, 2.0, 3.0]))
    description = json.loads(json.dumps(config_dict(model)))  # JSON-safe
    assert description["name"] == name

    torch.manual_seed(1)  # different initial weights
    rebuilt = from_config_dict(description)
    assert type(rebuilt) is type(model)
    assert rebuilt.config == model.config
    assert config_dict(rebuilt) == description
    state, new_state = model.state_dict(), rebuilt.state_dict()
    assert list(state) == list(new_state)
    assert all(state[k].shape == new_state[k].shape for k in state)

    rebuilt.load_state_dict(state)
    model.eval()
    rebuilt.eval()
    x = torch.randn(2, 30, 4)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


@pytest.mark.parametrize(
    ("description", "match"),
    [
        ([1, 2], "must be a JSON object. Got list"),
        ({"n_features": 3}, "unknown model None"),
        ({"name": "gru", "n_features": 3}, "unknown model 'gru'"),
        ({"name": "simple", "n_features": 3, "units": 5}, r"unknown fields \['units'\]"),
        ({"name": "simple"}, "config for 'simple' is invalid"),
        ({"name": "stacked", "n_features": 3, "dropout": 2.0}, "invalid: The 'dropout' parameter"),
        ({"name": "linear", "n_features": 3, "lookback": "24"}, "'lookback'"),
        ({"name": "lstm", "n_features": 3, "layers": "50"}, "'layers'"),
    ],
)
def test_from_config_dict_rejects_malformed(description: object, match: str) -> None:
    with pytest.raises(ModelFileError, match=match):
        from_config_dict(description)


def test_config_dict_rejects_foreign_modules() -> None:
    with pytest.raises(ConfigError, match=r"built by lstmcast\.models\.build"):
        config_dict(torch.nn.Linear(2, 2))
