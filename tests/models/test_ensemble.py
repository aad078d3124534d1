"""An ensemble of the LSTM family (lstm and the three presets) trained as one model: each member
is exactly the single model with its weights, on every backend the layer has; on the CPU's C++
layer all members run at once and give what the member loop gives; one step trains each member
as its own loss would; the weights are stacked (Keras's counts K times, the frozen bias still
frozen); and the library takes it like any model (reports, spread intervals, covariates, model
files), while the models without members refuse --ensemble in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import lstmcast
from lstmcast import ConfigError, models
from lstmcast.kernels import cpu_lstm
from lstmcast.kernels.dispatch import Backend
from lstmcast.models import KerasLSTM, LSTMForecaster
from lstmcast.models import lstm as lstm_module
from lstmcast.models.ensemble import MemberLoss, StackedEnsemble, kept_mean, kept_median

FAMILY = ["simple", "stacked", "bidirectional", "lstm"]
# CPU CI has no GPU: these run on a lent one (benchmarks/gpu_checks.sh)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def single_with(ensemble: StackedEnsemble, k: int, **overrides) -> nn.Module:
    """The single model with member k's weights (evaluated: no dropout)."""
    single = models.build(ensemble.name, 3, horizon=2, **overrides)
    with torch.no_grad():
        for name, param in single.named_parameters():
            param.copy_(ensemble.stacked[name.replace(".", "-")][k])
    return single.eval()


@pytest.mark.parametrize("name", FAMILY)
def test_every_member_computes_what_the_single_model_with_its_weights_computes(name):
    torch.manual_seed(0)
    ensemble = models.build(name, 3, horizon=2, members=3).eval()
    ensemble.batched = False  # member after member: the single model's own calls
    torch.manual_seed(0)
    first = models.build(name, 3, horizon=2).eval()
    x = torch.randn(6, 10, 3)
    ensemble.every_member = True
    every = ensemble(x)  # (B, H, T, K)
    assert every.shape == (6, 2, 3, 3)
    assert torch.equal(every[..., 0], first(x))  # member 0: the single model of the same seed
    for k in range(3):
        assert torch.equal(every[..., k], single_with(ensemble, k)(x))
    assert not torch.equal(every[..., 1], every[..., 0])  # each member its own draw
    ensemble.every_member = False
    torch.testing.assert_close(ensemble(x), every.mean(-1))


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("simple", {}),
        ("stacked", {"dropout": 0.0}),
        ("bidirectional", {}),
        ("lstm", {"layers": (6, 5), "bidirectional": True, "revin": True, "context": 2}),
    ],
)
def test_all_members_at_once_give_what_the_member_loop_gives(name, options):
    """On the CPU's C++ layer the members run in one pass (one layer call for all of them):
    the same forecasts and the same gradients of every stacked weight as one member at a time."""
    torch.manual_seed(0)
    ensemble = models.build(name, 3, horizon=2, members=3, **options)
    x, target = torch.randn(5, 9, 3), torch.randn(5, 2, 3)
    context = torch.randn(5, 2) if options.get("context") else None
    assert ensemble.structure.runs_members_at_once(x, 3)
    results = []
    for batched in (True, False):
        ensemble.batched = batched
        ensemble.zero_grad()
        every = ensemble(x, context)  # training: (B, H, T, K)
        MemberLoss(nn.MSELoss())(every, target).backward()
        grads = {n: p.grad.clone() for n, p in ensemble.named_parameters() if p.grad is not None}
        results.append((every.detach(), grads))
    (at_once, grads_at_once), (loop, grads_loop) = results
    assert at_once.shape == (5, 2, 3, 3)
    torch.testing.assert_close(at_once, loop, rtol=1e-5, atol=1e-6)
    assert grads_at_once.keys() == grads_loop.keys() and len(grads_loop) > 0
    for n, g in grads_loop.items():
        torch.testing.assert_close(grads_at_once[n], g, rtol=1e-4, atol=1e-6, msg=n)


def test_members_run_at_once_only_where_the_cpu_layer_runs(monkeypatch):
    torch.manual_seed(0)
    ensemble = models.build("simple", 3, horizon=2, members=2).eval()
    x = torch.randn(4, 6, 3)
    calls = []
    member = ensemble.member
    monkeypatch.setattr(ensemble, "member", lambda *a: calls.append(a[0]) or member(*a))
    ensemble(x)
    assert calls == []  # the C++ layer: one pass for both members
    monkeypatch.setattr(cpu_lstm, "ENABLED", False)  # the torch loop: member after member
    assert not ensemble.structure.runs_members_at_once(x, 2)
    ensemble(x)
    assert calls == [0, 1]


def test_members_too_large_for_one_pass_run_one_after_another(monkeypatch):
    """The rule: one pass while its saved arrays (6 x units floats per row and step for each
    layer and direction) are at most AT_ONCE_FLOATS, member after member above."""
    structure = models.build("stacked", 3, horizon=2)
    per_window = 10 * (6 * 64 + 6 * 32)  # lookback 10, the two layers
    monkeypatch.setattr(lstm_module, "AT_ONCE_FLOATS", 5 * 8 * per_window)
    assert structure.runs_members_at_once(torch.randn(8, 10, 3), 5)
    assert not structure.runs_members_at_once(torch.randn(9, 10, 3), 5)
    assert not structure.runs_members_at_once(torch.randn(8, 10, 3), 6)


@pytest.mark.parametrize("backend", [Backend.loop, Backend.nn_lstm])
def test_a_member_runs_on_the_layer_backends_the_single_model_runs_on(backend, monkeypatch):
    # tanh through torch's nn.LSTM (what CUDA's cuDNN path calls) and the torch loop, both
    # reading the member's weights through nn.LSTM's own attributes
    monkeypatch.setattr(
        KerasLSTM, "forward", lambda self, x: self.forward_with(backend, x), raising=True
    )
    torch.manual_seed(0)
    ensemble = models.build("lstm", 3, horizon=2, members=2, layers=(8, 4)).eval()
    single = single_with(ensemble, 1, layers=(8, 4))
    x = torch.randn(4, 6, 3)
    torch.testing.assert_close(ensemble.member(1, x), single(x), rtol=0, atol=0)


def test_one_step_trains_each_member_as_its_own_loss_would():
    torch.manual_seed(0)
    ensemble = models.build("stacked", 3, horizon=2, members=3, dropout=0.0)
    x, target = torch.randn(8, 10, 3), torch.randn(8, 2, 3)
    MemberLoss(nn.MSELoss())(ensemble(x), target).backward()
    for k in range(3):
        single = single_with(ensemble, k, dropout=0.0).train()
        (nn.functional.mse_loss(single(x), target) / 3).backward()
        for n, p in single.named_parameters():
            grad = ensemble.stacked[n.replace(".", "-")].grad
            if not p.requires_grad:
                assert grad is None, n
                continue
            torch.testing.assert_close(grad[k], p.grad, rtol=1e-5, atol=1e-7, msg=n)


def test_the_members_are_one_model_with_stacked_weights_and_keras_counts():
    ensemble = models.build("bidirectional", 3, members=5)
    single = models.build("bidirectional", 3)
    assert not any(isinstance(m, LSTMForecaster | nn.LSTM) for m in ensemble.modules())
    assert all(p.shape[0] == 5 for p in ensemble.parameters())  # a leading member axis

    def trainable(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters() if p.requires_grad)

    assert trainable(ensemble) == 5 * trainable(single)  # one bias per gate, K times
    frozen = [n for n, p in ensemble.named_parameters() if not p.requires_grad]
    assert frozen and all("bias_hh" in n for n in frozen)


def frame(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    return pd.DataFrame(
        {
            "date": pd.date_range("2022-01-01", periods=rows, freq="D"),
            "y": np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.2, rows),
            "z": rng.normal(0, 1, rows).cumsum(),
        }
    )


def test_a_preset_ensemble_is_reported_gives_spread_intervals_and_is_saved(tmp_path):
    data = frame()
    options = dict(horizon=2, epochs=2, lookback=14, ensemble=3, intervals=(0.8,))
    fitted = lstmcast.Forecaster("simple", interval_method="spread", **options).fit(data)
    section = fitted.evaluate(data)["ensemble"]
    assert section["members"] == 3 and section["kept"] == [0, 1, 2]
    assert section["spread_scaled"] > 0 and len(section["val_mse_scaled"]) == 3
    forecast = fitted.predict(data)
    assert (forecast["y_upper_80"] > forecast["y_lower_80"]).all()
    loaded = lstmcast.load(fitted.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.predict(data), forecast)


def test_a_seeded_preset_ensemble_repeats_bit_for_bit_on_the_cpu():
    """All members in one C++ layer call (with dropout: stacked) still repeat a seeded run: the
    per-thread gradient shares are added in thread order, per member."""
    data = frame()
    options = dict(horizon=2, epochs=2, lookback=14, ensemble=3, seed=7)
    runs = [lstmcast.Forecaster("stacked", **options).fit(data) for _ in range(2)]
    ensembles = [models.ensemble_of(run.state_.model) for run in runs]
    assert all(e is not None and e.batched is None for e in ensembles)  # the rule decides
    assert ensembles[0].structure.runs_members_at_once(torch.zeros(32, 14, 2), 3)  # at once
    first, second = (dict(e.named_parameters()) for e in ensembles)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[n], second[n]) for n in first)
    pd.testing.assert_frame_equal(runs[0].predict(data), runs[1].predict(data))


def test_an_lstm_ensemble_reads_covariates_known_in_advance():
    data = frame()
    data["promo"] = (np.arange(len(data)) % 5 == 0).astype(float)
    fitted = lstmcast.Forecaster(
        "lstm",
        horizon=2,
        epochs=1,
        lookback=14,
        ensemble=2,
        targets=("y", "z"),
        future_covariates=("promo",),
    ).fit(data)
    ensemble = models.ensemble_of(fitted.state_.model)
    assert ensemble is not None and ensemble.config.context > 0  # the heads read the promo
    assert np.isfinite(fitted.evaluate(data)["model"]["scaled"]["mse"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "linear"}, "model 'linear' is trained alone"),
        ({"model": "repeat_last"}, "model 'repeat_last' is trained alone"),
        (
            {"model": "simple", "intervals": (0.8,), "interval_method": "quantile"},
            "point forecasts",
        ),
    ],
)
def test_what_an_ensemble_does_not_take_is_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        lstmcast.Forecaster(**{"epochs": 1, "ensemble": 2, "lookback": 14, **options}).fit(frame())


def test_the_median_of_the_kept_members_ignores_one_far_off():
    y = torch.tensor([1.0, 2.0, 9.0, 1000.0, 3.0]).view(1, 1, 1, 5)
    every = torch.ones(5)
    assert kept_median(y, every).item() == 3.0  # 1, 2, 3, 9, 1000
    assert kept_mean(y, every).item() == pytest.approx(203.0)
    dropped = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0])  # member 3 dropped on validation
    assert kept_median(y, dropped).item() == 2.5  # 1, 2, 3, 9: the middle two's mean


def test_an_ensemble_forecasts_its_kept_members_median_when_asked(tmp_path):
    data = frame()
    options = dict(horizon=2, epochs=2, lookback=14, ensemble=3, intervals=(0.8,))
    fitted = lstmcast.Forecaster(
        "bidirectional", ensemble_reduce="median", interval_method="spread", **options
    ).fit(data)
    ensemble = models.ensemble_of(fitted.state_.model)
    assert ensemble is not None and ensemble.reduce == "median"
    x = torch.randn(4, 14, 2)
    ensemble.eval()
    ensemble.every_member = True
    every = ensemble(x)
    ensemble.every_member = False
    assert torch.equal(ensemble(x), every.median(dim=-1).values)  # 3 members: the middle one
    assert fitted.evaluate(data)["ensemble"]["reduce"] == "median"
    forecast = fitted.predict(data)
    loaded = lstmcast.load(fitted.save(tmp_path / "m"))
    assert models.ensemble_of(loaded.state_.model).reduce == "median"
    pd.testing.assert_frame_equal(loaded.predict(data), forecast)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ensemble_reduce": "median"}, "needs --ensemble K"),
        ({"ensemble": 2, "ensemble_reduce": "mode"}, "'ensemble_reduce'.*mean, median"),
    ],
)
def test_a_reduce_that_cannot_apply_is_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        lstmcast.Forecaster("simple", lookback=14, **options)


@CUDA
@pytest.mark.parametrize("name", FAMILY)
def test_on_cuda_each_member_computes_what_the_single_model_with_its_weights_computes(name):
    """On CUDA the members run one after another on the single model's kernels (cuDNN for
    tanh, Triton for relu)."""
    torch.manual_seed(0)
    ensemble = models.build(name, 3, horizon=2, members=3).eval().cuda()
    assert not ensemble.structure.runs_members_at_once(torch.zeros(6, 10, 3, device="cuda"), 3)
    x = torch.randn(6, 10, 3, device="cuda")
    ensemble.every_member = True
    every = ensemble(x)
    for k in range(3):
        single = single_with(ensemble.cpu(), k).cuda()
        ensemble.cuda()
        torch.testing.assert_close(every[..., k], single(x), rtol=1e-5, atol=1e-6)


@CUDA
@pytest.mark.parametrize("name", ["simple", "stacked"])
def test_on_cuda_an_ensemble_trains_the_same_in_the_graph_and_eagerly(name):
    """The training step captured as one CUDA graph (the member loop inside it) gives the
    losses the eager step gives, and the fitted ensemble forecasts."""
    data = frame()
    options = dict(horizon=2, epochs=3, lookback=14, ensemble=3, seed=3, device="cuda")
    runs = [
        lstmcast.Forecaster(name, cuda_graph=graph, **options).fit(data) for graph in (True, False)
    ]
    graph, eager = (run.state_.training.history for run in runs)
    assert [h["epoch"] for h in graph] == [1, 2, 3]
    for with_graph, without in zip(graph, eager, strict=True):
        assert with_graph["train_loss"] == pytest.approx(without["train_loss"], rel=1e-4)
        assert with_graph["val_loss"] == pytest.approx(without["val_loss"], rel=1e-4)
    forecast = runs[0].predict(data)
    assert np.isfinite(forecast[["y", "z"]].to_numpy()).all()
