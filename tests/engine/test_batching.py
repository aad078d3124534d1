"""Windows gathered by index (lstmcast.engine.batching) against plain advanced indexing."""

import pytest
import torch

from lstmcast.engine.batching import Layout, gather_batch, gather_inputs, gather_targets


def rows(series: torch.Tensor, starts: torch.Tensor, first: int, count: int) -> torch.Tensor:
    return series[starts[:, None] + torch.arange(first, first + count)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_windows_and_targets_equal_indexing_up_to_the_last_window(dtype):
    series = torch.randn(50, 3, dtype=dtype)
    lookback, horizon = 7, 3
    starts = torch.tensor([0, 40, 5, 5, 12, 40])  # 40: the last full window; a repeat
    x = gather_inputs(series, starts, lookback)
    assert x.shape == (6, lookback, 3) and x.dtype == dtype
    assert torch.equal(x, rows(series, starts, 0, lookback))
    y = gather_targets(series, starts, lookback, horizon, 2)
    assert torch.equal(y, rows(series, starts, lookback, horizon)[..., :2])
    x[0, 0, 0] = 1e6  # a copy: writing to the batch leaves the series alone
    assert series[0, 0] != 1e6


def test_future_covariates_over_the_horizon_and_static_columns_from_the_last_row():
    series = torch.arange(60.0).view(20, 3)  # columns: target, known-future, static
    layout = Layout(n_targets=1, n_inputs=2, n_future=1, n_static=1)
    starts = torch.tensor([0, 14])
    x, future, static, codes = gather_batch(series, starts, 4, 2, layout)
    assert torch.equal(x, rows(series, starts, 0, 4)[..., :2])
    assert torch.equal(future, rows(series, starts, 4, 2)[..., 1:2])
    assert torch.equal(static, series[starts + 3, 2:3]) and codes.shape == (2, 0)


def test_non_contiguous_series_and_autograd_go_through():
    series = torch.randn(3, 40).t()  # (40, 3), not contiguous
    starts = torch.tensor([1, 30, 2])
    assert torch.equal(gather_inputs(series, starts, 10), rows(series, starts, 0, 10))
    leaf = torch.randn(40, 3, requires_grad=True)
    gather_inputs(leaf, starts, 10).sum().backward()
    assert leaf.grad is not None and leaf.grad.sum() == 3 * 10 * 3


def test_a_start_past_the_last_window_is_an_error():
    with pytest.raises(IndexError):
        gather_inputs(torch.randn(20, 2), torch.tensor([14]), 7)
