"""The C++ LSTM layer (lstmcast.kernels.cpu_lstm) against the torch loop and oneDNN."""

import pytest
import torch

from lstmcast.kernels import cpu_lstm
from lstmcast.kernels.activations import CODES
from lstmcast.models.keras_lstm import KerasLSTM


@pytest.fixture(autouse=True)
def compiled() -> None:
    if cpu_lstm.load() is None:  # the warning says why; the torch loop is then what runs
        pytest.fail("the C++ CPU layer did not build on this machine")


def run(layer: KerasLSTM, x: torch.Tensor, compiled: bool, monkeypatch) -> tuple:
    """Output and the gradients of x and every trainable weight, through one path."""
    monkeypatch.setattr(cpu_lstm, "ENABLED", compiled)
    x = x.clone().requires_grad_()
    out = layer(x)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(9))
    params = [p for p in layer.parameters() if p.requires_grad]
    grads = torch.autograd.grad((out * weights).sum(), [x, *params])
    return out, grads


# (batch, steps, inputs, units): batch blocks of 4 with and without a rest; gate widths that
# are 1-4 register blocks plus a rest, with vectors of 8 (AVX2) or 16 (AVX-512); a single step.
SHAPES = [(5, 6, 3, 8), (37, 4, 7, 50), (9, 3, 2, 28), (4, 1, 3, 16), (2, 5, 4, 13)]


@pytest.mark.parametrize("activation", sorted(CODES))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_compiled_layer_matches_torch_loop(activation, bidirectional, monkeypatch):
    for batch, steps, inputs, units in SHAPES:
        for return_sequences in (False, True):
            torch.manual_seed(2)
            layer = KerasLSTM(inputs, units, activation, bidirectional, return_sequences)
            with torch.no_grad():  # larger recurrent weights than orthogonal, to load the gates
                for name, p in layer.lstm.named_parameters():
                    if name.startswith(("weight_hh", "bias_ih")):
                        p.add_(0.3 * torch.randn_like(p))
            x = torch.randn(batch, steps, inputs)
            got, got_grads = run(layer, x, True, monkeypatch)
            want, want_grads = run(layer, x, False, monkeypatch)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            for g, w in zip(got_grads, want_grads, strict=True):
                torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_long_sequences_kernel_gradients_match_the_torch_loop(
    activation, bidirectional, return_sequences, monkeypatch
):
    """Past L1 (80 steps x 112 gate columns of a row's dz) the kernels' gradients go column
    block by column block; with a rest of rows (5 inputs + 1, 28 units) and of columns."""
    torch.manual_seed(3)
    layer = KerasLSTM(5, 28, activation, bidirectional, return_sequences)
    x = torch.randn(6, 80, 5)
    got, got_grads = run(layer, x, True, monkeypatch)
    want, want_grads = run(layer, x, False, monkeypatch)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "relu", "hard_sigmoid"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_inference_gives_the_training_forwards_floats(activation, bidirectional, monkeypatch):
    """Without a gradient the layer runs `infer`, which keeps no states or gates for a backward
    pass (and, for the last step only, not even the hidden states of the others): its output
    must be the training forward's bit for bit, in both directions, with and without a rest
    of batch rows, and at a size that takes arrays from the block cache."""
    monkeypatch.setattr(cpu_lstm, "ENABLED", True)
    for batch, steps, inputs, units in [*SHAPES, (301, 30, 5, 24)]:
        for return_sequences in (False, True):
            torch.manual_seed(5)
            layer = KerasLSTM(inputs, units, activation, bidirectional, return_sequences)
            x = torch.randn(batch, steps, inputs)
            training = layer(x.clone().requires_grad_())  # the autograd path
            assert training.grad_fn is not None
            with torch.no_grad():
                inferred = layer(x)
            assert torch.equal(inferred, training.detach())
            weights = [w for direction in layer.lstm.all_weights for w in direction]
            called = cpu_lstm.load().infer(  # type: ignore[union-attr]
                x, [w.detach() for w in weights], CODES[activation], return_sequences
            )
            assert called.shape == (
                (batch, steps, 1 + bidirectional, units)
                if return_sequences
                else (batch, 1 + bidirectional, units)
            )


@pytest.mark.parametrize("bidirectional", [False, True])
def test_backward_from_the_last_states_is_the_all_steps_backward_with_zeros(bidirectional):
    """When the layer outputs only each direction's last state, its backward pass gets the
    gradient of just those (B, D, U) and takes the other steps' as zero: the same floats as
    the all-steps backward given a (B, L, D, U) gradient that is zero but at those states
    (time L-1 forward, time 0 backward)."""
    ext = cpu_lstm.load()
    for batch, steps, inputs, units in [*SHAPES, (301, 30, 5, 24)]:
        torch.manual_seed(7)
        directions = 1 + bidirectional
        weights = []
        for _ in range(directions):
            weights += [0.3 * torch.randn(4 * units, inputs), 0.3 * torch.randn(4 * units, units)]
            weights += [0.1 * torch.randn(4 * units), 0.1 * torch.randn(4 * units)]
        x = torch.randn(batch, steps, inputs)
        hs, cs, gates, x_ones = ext.forward(x, weights, CODES["tanh"])
        last = torch.randn(batch, directions, units)
        full = torch.zeros(batch, steps, directions, units)
        full[:, -1, 0] = last[:, 0]
        if bidirectional:
            full[:, 0, 1] = last[:, 1]
        common = (x_ones, weights, hs, cs, gates, CODES["tanh"], True)
        from_last = ext.backward(last, *common, False)
        from_full = ext.backward(full, *common, True)
        assert len(from_last) == 1 + 3 * directions
        for a, b in zip(from_last, from_full, strict=True):
            assert torch.equal(a, b)


def test_large_arrays_from_the_block_cache_are_reused_without_stale_values(monkeypatch):
    """Arrays of 1 MB and more come from a cache of freed blocks: a second call, a smaller
    batch (a block up to twice its size serves it) and a call while the first call's arrays are
    still alive must each give the reference result."""
    torch.manual_seed(4)
    layer = KerasLSTM(5, 24, "tanh", return_sequences=True)
    kept = None
    for batch in (300, 300, 220, 300):  # gates alone are ~4.6 MB at batch 300
        x = torch.randn(batch, 40, 5)
        got, got_grads = run(layer, x, True, monkeypatch)
        want, want_grads = run(layer, x, False, monkeypatch)  # fused: nn.LSTM
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        for g, w in zip(got_grads, want_grads, strict=True):  # sums of 12,000 terms
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
        if kept is None:
            kept = got  # holds its block: the next calls must get others
    assert kept is not None and torch.isfinite(kept).all()


def test_compiled_tanh_matches_onednn(monkeypatch):
    """With tanh the torch loop is not the reference: nn.LSTM (oneDNN) is."""
    torch.manual_seed(3)
    layer = KerasLSTM(7, 50, "tanh", bidirectional=True, return_sequences=True)
    x = torch.randn(33, 12, 7)
    got, got_grads = run(layer, x, True, monkeypatch)
    want, want_grads = run(layer, x, False, monkeypatch)  # fused: nn.LSTM
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_nonzero_bias_hh_is_used_like_nn_lstm(monkeypatch):
    """A state dict from elsewhere may carry torch's second bias; it must count."""
    torch.manual_seed(4)
    layer = KerasLSTM(3, 8, "tanh")
    with torch.no_grad():
        layer.lstm.bias_hh_l0.uniform_(-1, 1)
    x = torch.randn(4, 5, 3)
    got, _ = run(layer, x, True, monkeypatch)
    want, _ = run(layer, x, False, monkeypatch)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_compiled_dropout_is_inverted_dropout_with_a_repeatable_mask():
    x = torch.randn(64, 40, 50, requires_grad=True)
    layer = cpu_lstm.Dropout(0.3)
    torch.manual_seed(0)
    y = layer(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01  # 128,000 draws
    torch.testing.assert_close(y[kept], x[kept] / 0.7)
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad != 0, kept)  # the backward regenerates the same mask
    torch.testing.assert_close(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.7))
    torch.manual_seed(0)
    assert torch.equal(layer(x), y)  # torch.manual_seed repeats it
    assert not torch.equal(layer(x), y)  # and the next call draws a new mask
    # masks of neighbouring elements are not correlated (a hash, not a stride pattern)
    flat = kept.flatten().float()
    assert abs(torch.corrcoef(torch.stack((flat[:-1], flat[1:])))[0, 1].item()) < 0.02
    layer.eval()
    assert torch.equal(layer(x), x)


def weights_of(layer: KerasLSTM) -> list[torch.Tensor]:
    return [w.detach() for direction in layer.lstm.all_weights for w in direction]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("all_steps", [False, True])
def test_members_in_one_call_are_each_members_own_call(bidirectional, all_steps):
    """An ensemble's K members in one call (weights with a leading member axis, the members'
    batches stacked member-major) give each member what a call with its own weights gives:
    states bit for bit, in training and inference, and the same gradients of every weight
    and of the input, with a rest of batch rows per member (no row block straddles two)."""
    K, B, L, inputs, units = 3, 5, 6, 4, 13
    layers = []
    for k in range(K):
        torch.manual_seed(k)
        layers.append(KerasLSTM(inputs, units, "tanh", bidirectional))
    each = [weights_of(layer) for layer in layers]
    stacked = [torch.stack(ws).requires_grad_() for ws in zip(*each, strict=True)]
    x = torch.randn(K * B, L, inputs, requires_grad=True)
    out = cpu_lstm.layer(x, "tanh", stacked, all_steps)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(9))
    got = torch.autograd.grad((out * probe).sum(), [x, *stacked])
    with torch.no_grad():
        assert torch.equal(cpu_lstm.layer(x, "tanh", stacked, all_steps), out)  # infer
    for k in range(K):
        rows = slice(k * B, (k + 1) * B)
        ws = [w.clone().requires_grad_() for w in each[k]]
        xk = x.detach()[rows].clone().requires_grad_()
        own = cpu_lstm.layer(xk, "tanh", ws, all_steps)
        assert torch.equal(own, out[rows])
        want = torch.autograd.grad((own * probe[rows]).sum(), [xk, *ws])
        torch.testing.assert_close(got[0][rows], want[0], rtol=1e-5, atol=1e-6)
        for g, w in zip(got[1:], want[1:], strict=True):
            torch.testing.assert_close(g[k], w, rtol=1e-5, atol=1e-6)


def test_weights_with_and_without_a_member_axis_do_not_mix():
    layer = KerasLSTM(3, 8)
    ws = weights_of(layer)
    mixed = [ws[0].unsqueeze(0), *ws[1:]]
    with pytest.raises(RuntimeError, match="same leading member axis"):
        cpu_lstm.layer(torch.randn(2, 4, 3), "tanh", mixed, False)
    stacked = [torch.stack([w, w]) for w in ws]
    with pytest.raises(RuntimeError, match="members' batches stacked"):
        cpu_lstm.layer(torch.randn(3, 4, 3), "tanh", stacked, False)
