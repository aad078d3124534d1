"""The LSTM models match Keras: parameter counts, equations (against NumPy) and initialisation."""

import math

import numpy as np
import pytest
import torch

from lstmcast.errors import ConfigError
from lstmcast.kernels import cpu_lstm
from lstmcast.models import KerasLSTM, LSTMConfig, LSTMForecaster, build


def n_trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def keras_lstm_params(input_dim: int, units: int) -> int:
    return 4 * (units * (input_dim + units) + units)  # one bias per gate


def dense_params(input_dim: int, units: int) -> int:
    return input_dim * units + units


@pytest.mark.parametrize("F", [1, 3, 7, 12])
def test_trainable_counts_equal_keras(F: int) -> None:
    expected = {
        "simple": keras_lstm_params(F, 50) + dense_params(50, F),
        "stacked": keras_lstm_params(F, 64) + keras_lstm_params(64, 32) + dense_params(32, F),
        "bidirectional": 2 * keras_lstm_params(F, 50) + dense_params(100, F),
    }
    for name, count in expected.items():
        assert n_trainable(build(name, F)) == count, name


def test_simple_with_three_variables_has_the_reference_counts() -> None:
    model = build("simple", 3)
    assert isinstance(model, LSTMForecaster)
    assert n_trainable(model.layers) == 10_800
    assert n_trainable(model.head) == 153


# --- Keras's equations in NumPy (float64) -----------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


NP_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": _sigmoid,
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "hard_sigmoid": lambda z: np.clip((z + 3.0) / 6.0, 0.0, 1.0),
    "softsign": lambda z: z / (1.0 + np.abs(z)),
    "linear": lambda z: z,
}


def np_keras_lstm(x, kernel, recurrent, bias, activation, go_backwards=False):
    """Keras LSTM: kernel (I, 4U), recurrent (U, 4U), bias (4U,); gates i, f, c, o.
    Returns the output sequence in processing order (B, L, U) and the final state (B, U)."""
    act = NP_ACTIVATIONS[activation]
    B, L, _ = x.shape
    U = recurrent.shape[0]
    h, c = np.zeros((B, U)), np.zeros((B, U))
    outputs = []
    for t in reversed(range(L)) if go_backwards else range(L):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, o = _sigmoid(z[:, :U]), _sigmoid(z[:, U : 2 * U]), _sigmoid(z[:, 3 * U :])
        g = act(z[:, 2 * U : 3 * U])
        c = f * c + i * g
        h = o * act(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def np_keras_layer(layer: KerasLSTM, x: np.ndarray) -> np.ndarray:
    """Keras LSTM / Bidirectional(merge_mode="concat") with the torch layer's weights."""
    results = []
    for d, (w_ih, w_hh, b_ih, b_hh) in enumerate(layer.lstm.all_weights):
        kernel, recurrent = w_ih.detach().double().numpy().T, w_hh.detach().double().numpy().T
        bias = (b_ih + b_hh).detach().double().numpy()
        seq, last = np_keras_lstm(x, kernel, recurrent, bias, layer.activation, go_backwards=d == 1)
        if layer.return_sequences:
            results.append(seq[:, ::-1] if d == 1 else seq)  # Bidirectional re-reverses
        else:
            results.append(last)
    return np.concatenate(results, axis=-1)


def random_layer(seed: int, **kwargs) -> KerasLSTM:
    torch.manual_seed(seed)
    layer = KerasLSTM(3, 5, **kwargs)
    with torch.no_grad():
        for w_ih, w_hh, b_ih, _ in layer.lstm.all_weights:
            w_ih.normal_(0, 0.5)
            w_hh.normal_(0, 0.5)
            b_ih.normal_(0, 0.5)
    return layer


CASES = [
    dict(activation="relu"),
    dict(activation="tanh"),  # fused kernel
    dict(activation="tanh", fused=False),
    dict(activation="sigmoid"),
    dict(activation="elu"),
    dict(activation="hard_sigmoid"),
    dict(activation="softsign"),
    dict(activation="linear"),
    dict(activation="relu", bidirectional=True),
    dict(activation="tanh", bidirectional=True),
    dict(activation="relu", return_sequences=True),
    dict(activation="relu", bidirectional=True, return_sequences=True),
    dict(activation="tanh", bidirectional=True, return_sequences=True),
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: "-".join(f"{v}" for v in k.values()))
@pytest.mark.parametrize("cpu_extension", [True, False], ids=["c++", "torch"])
def test_layer_matches_keras_equations_in_numpy(
    kwargs: dict, cpu_extension: bool, monkeypatch
) -> None:
    # with the C++ layer off, tanh runs nn.LSTM (oneDNN) and the others the torch loop
    monkeypatch.setattr(cpu_lstm, "ENABLED", cpu_extension)
    layer = random_layer(0, **kwargs)
    x = np.random.default_rng(1).normal(size=(4, 6, 3))
    with torch.no_grad():
        got = layer(torch.tensor(x, dtype=torch.float32)).numpy()
    expected = np_keras_layer(layer, x)
    D = 2 if kwargs.get("bidirectional") else 1
    assert got.shape == ((4, 6, 5 * D) if kwargs.get("return_sequences") else (4, 5 * D))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_tanh_uses_the_fused_kernel_and_other_activations_do_not() -> None:
    assert KerasLSTM(3, 5, "tanh").fused
    assert not KerasLSTM(3, 5, "tanh", fused=False).fused
    assert not KerasLSTM(3, 5, "relu").fused


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_fused_tanh_equals_explicit_tanh(
    bidirectional: bool, return_sequences: bool, monkeypatch
) -> None:
    monkeypatch.setattr(cpu_lstm, "ENABLED", False)  # nn.LSTM against the torch loop
    kwargs = dict(bidirectional=bidirectional, return_sequences=return_sequences)
    fused = random_layer(2, activation="tanh", **kwargs)
    explicit = KerasLSTM(3, 5, "tanh", fused=False, **kwargs)
    explicit.load_state_dict(fused.state_dict())
    x = torch.randn(8, 9, 3)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), explicit(x), rtol=1e-5, atol=1e-6)


# --- Keras initialisation ----------------------------------------------------------------------


def test_keras_initialisation() -> None:
    torch.manual_seed(0)
    n_in, U = 20, 50
    layer = KerasLSTM(n_in, U, "relu", bidirectional=True)
    for w_ih, w_hh, b_ih, b_hh in layer.lstm.all_weights:
        # unit_forget_bias: forget-gate slice 1, the rest 0; torch's second bias frozen at 0
        expected_bias = torch.zeros(4 * U)
        expected_bias[U : 2 * U] = 1.0
        assert torch.equal(b_ih.detach(), expected_bias)
        assert torch.equal(b_hh.detach(), torch.zeros(4 * U))
        assert b_ih.requires_grad and not b_hh.requires_grad
        # orthogonal over the whole Keras recurrent kernel (U, 4U) = w_hh.T: orthonormal rows
        gram = w_hh.detach().T @ w_hh.detach()  # (U, U)
        torch.testing.assert_close(gram, torch.eye(U), atol=1e-5, rtol=0)
        # glorot_uniform over the Keras kernel (I, 4U): U(-limit, limit), std limit / sqrt(3)
        limit = math.sqrt(6 / (n_in + 4 * U))
        assert w_ih.abs().max() <= limit
        assert w_ih.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.05)


def test_dense_head_has_glorot_kernel_and_zero_bias() -> None:
    torch.manual_seed(0)
    model = build("simple", 3)
    assert isinstance(model, LSTMForecaster)
    limit = math.sqrt(6 / (50 + 3))
    weight = model.head.weight.detach()
    assert weight.abs().max() <= limit
    assert weight.abs().max() >= 0.7 * limit
    assert torch.equal(model.head.bias.detach(), torch.zeros(3))


def test_same_seed_same_weights() -> None:
    torch.manual_seed(3)
    a = build("stacked", 4).state_dict()
    torch.manual_seed(3)
    b = build("stacked", 4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- the forecaster ----------------------------------------------------------------------------


def test_gradients_flow_through_the_relu_path() -> None:
    torch.manual_seed(0)
    model = build("stacked", 4, horizon=2)
    model.train()
    loss = (model(torch.randn(8, 10, 4)) - torch.randn(8, 2, 4)).pow(2).mean()
    loss.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, name
            assert torch.isfinite(param.grad).all(), name
            assert param.grad.abs().sum() > 0, name
        else:
            assert name.endswith(("bias_hh_l0", "bias_hh_l0_reverse")), name
            assert param.grad is None, name


def test_dropout_after_each_lstm_layer_only_in_training() -> None:
    torch.manual_seed(0)
    model = build("stacked", 3)
    calls = []
    model.dropout.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(4, 7, 3)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    assert len(calls) == 2 * 4  # two LSTM layers, four forward passes
    assert isinstance(build("simple", 3).dropout, torch.nn.Identity)


def test_forecaster_shape_and_covariates() -> None:
    model = LSTMForecaster(LSTMConfig(n_features=5, horizon=4, n_targets=2, layers=(8, 6, 4)))
    assert model(torch.randn(3, 11, 5)).shape == (3, 4, 2)
    assert model.config.n_targets == 2
    assert LSTMConfig(n_features=5).n_targets == 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(dropout=1.5), r"The 'dropout' parameter must be a float in \[0, 1\). Got 1.5"),
        (dict(dropout="0.2"), "'dropout'"),
        (dict(layers=()), r"'layers' parameter must be a non-empty tuple of ints >= 1. Got \(\)"),
        (dict(layers=(50, 0)), "'layers'"),
        (dict(activation="swishy"), "'activation' parameter must be one of .*relu.*'swishy'"),
        (dict(horizon=0), "The 'horizon' parameter must be an int >= 1. Got 0 instead."),
        (dict(n_targets=4), r"'n_targets' parameter must be an int in \[1, n_features=3\]"),
        (dict(bidirectional="yes"), "'bidirectional'"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LSTMConfig(n_features=3, **kwargs)


def test_config_is_frozen_and_normalises_layers() -> None:
    config = LSTMConfig(n_features=2, layers=[8, 4])  # type: ignore[arg-type]
    assert config.layers == (8, 4)
    with pytest.raises(AttributeError):
        config.dropout = 0.5  # type: ignore[misc]


def test_revin_makes_the_forecast_follow_a_level_shift() -> None:
    """With window normalisation, shifting a window by a constant shifts the forecast by it."""
    torch.manual_seed(0)
    model = LSTMForecaster(LSTMConfig(n_features=3, horizon=2, revin=True, layers=(8,))).eval()
    x = torch.randn(4, 12, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x + 5.0), model(x) + 5.0, rtol=1e-4, atol=1e-4)


def test_forward_with_a_named_backend_matches_dispatch():
    from lstmcast.kernels.dispatch import Backend

    torch.manual_seed(0)
    layer = KerasLSTM(3, 5, "tanh")
    x = torch.randn(4, 6, 3)
    fused = layer.forward_with(Backend.nn_lstm, x)
    loop = layer.forward_with(Backend.loop, x)
    torch.testing.assert_close(fused, loop, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer(x), fused, rtol=1e-5, atol=1e-6)
