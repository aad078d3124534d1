"""The hand-written backward of the Keras recurrence against autograd and finite differences."""

import pytest
import torch

from lstmcast.kernels.activations import ACTIVATION_GRADS
from lstmcast.kernels.recurrence import LoopRecurrence
from lstmcast.models.keras_lstm import ACTIVATIONS


def autograd_recurrence(xp, w_hh_t, act):
    """The same equations, written the obvious way and differentiated by autograd."""
    D, L, B, G = xp.shape
    U = G // 4
    h = xp.new_zeros(D, B, U)
    c = xp.new_zeros(D, B, U)
    hs = []
    for t in range(L):
        z = xp[:, t] + h @ w_hh_t
        i, f, g, o = z.split(U, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * act(g)
        h = torch.sigmoid(o) * act(c)
        hs.append(h)
    return torch.stack(hs, dim=1)


def test_every_activation_has_a_gradient():
    assert set(ACTIVATION_GRADS) == set(ACTIVATIONS)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_loop_backward_matches_autograd(activation):
    torch.manual_seed(0)
    act = ACTIVATIONS[activation]
    xp = torch.randn(2, 5, 3, 4 * 4, dtype=torch.float64, requires_grad=True)
    w = (0.5 * torch.randn(2, 4, 16, dtype=torch.float64)).requires_grad_()
    weights = torch.randn(2, 5, 3, 4, dtype=torch.float64)  # a loss touching every step

    out = LoopRecurrence.apply(xp, w, activation, act)
    expected = autograd_recurrence(xp, w, act)
    torch.testing.assert_close(out, expected)

    grads = torch.autograd.grad((out * weights).sum(), (xp, w))
    expected_grads = torch.autograd.grad((expected * weights).sum(), (xp, w))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("activation", ["relu", "tanh", "elu"])
def test_loop_backward_passes_gradcheck(activation):
    torch.manual_seed(1)
    xp = torch.randn(1, 3, 2, 8, dtype=torch.float64, requires_grad=True)
    w = (0.5 * torch.randn(1, 2, 8, dtype=torch.float64)).requires_grad_()
    act = ACTIVATIONS[activation]
    assert torch.autograd.gradcheck(
        lambda a, b: LoopRecurrence.apply(a, b, activation, act), (xp, w)
    )
