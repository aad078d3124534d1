"""The Triton recurrence against the torch loop (needs CUDA + Triton; CPU CI skips it, and
benchmarks/graph_numerics.py records a GPU run in docs/performance.md)."""

import pytest
import torch

from lstmcast.kernels import triton_lstm
from lstmcast.kernels.activations import CODES
from lstmcast.kernels.recurrence import LoopRecurrence
from lstmcast.models.keras_lstm import ACTIVATIONS

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and triton_lstm.AVAILABLE), reason="needs CUDA and Triton"
)


@pytest.mark.parametrize("activation", sorted(CODES))
@pytest.mark.parametrize(("directions", "batch", "units"), [(1, 32, 50), (2, 5, 64), (1, 300, 32)])
def test_triton_matches_loop(activation, directions, batch, units, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # exact fp32 on both sides
    torch.manual_seed(0)
    L = 7
    xp = torch.randn(directions, L, batch, 4 * units, device="cuda", requires_grad=True)
    w = (torch.randn(directions, units, 4 * units, device="cuda") / units**0.5).requires_grad_()
    weights = torch.randn(directions, L, batch, units, device="cuda")
    act = ACTIVATIONS[activation]

    out = triton_lstm.TritonRecurrence.apply(xp, w, activation)
    ref = LoopRecurrence.apply(xp, w, activation, act)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    grads = torch.autograd.grad((out * weights).sum(), (xp, w))
    ref_grads = torch.autograd.grad((ref * weights).sum(), (xp, w))
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
