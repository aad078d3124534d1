"""Windows gathered by index (lstmcast.engine.batching): the NumPy block copy on the CPU
against torch's indexing."""

import pytest
import torch

from lstmcast.engine.batching import gather_inputs


def reference(series: torch.Tensor, starts: torch.Tensor, lookback: int) -> torch.Tensor:
    return series[starts[:, None] + torch.arange(lookback)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_block_copy_equals_indexing_up_to_the_last_window(dtype):
    series = torch.randn(50, 3, dtype=dtype)
    lookback = 7
    starts = torch.tensor([0, 43, 5, 5, 12, 43])  # 43: the last full window; a repeat
    got = gather_inputs(series, starts, lookback)
    assert got.shape == (6, lookback, 3) and got.dtype == dtype
    assert torch.equal(got, reference(series, starts, lookback))
    got[0, 0, 0] = 1e6  # a copy: writing to the batch leaves the series alone
    assert series[0, 0] != 1e6


def test_other_layouts_fall_back_to_indexing_with_the_same_result():
    base = torch.randn(3, 40)
    series = base.t()  # (40, 3), not contiguous
    starts = torch.tensor([1, 30, 2])
    assert torch.equal(gather_inputs(series, starts, 10), reference(series, starts, 10))
    grad = torch.randn(40, 3, requires_grad=True)
    assert gather_inputs(grad, starts, 10).requires_grad  # autograd kept through indexing


def test_a_start_past_the_last_window_is_an_error():
    with pytest.raises(IndexError):
        gather_inputs(torch.randn(20, 2), torch.tensor([14]), 7)
