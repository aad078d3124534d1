"""An ensemble of seglstm members trained as one model: each member computes what a SegLSTM
with its weights computes, member by member (the CPU's way) or all in the same batched ops
(a GPU's), with the same forecasts and gradients either way; the loss is the mean of
the members' own, a member that blew up on validation leaves the mean, and the rest of the
library (reports, model files, the CLI) takes it like any model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import lstmcast
from lstmcast import ConfigError, models
from lstmcast.config import make_config
from lstmcast.engine.batching import Layout
from lstmcast.models.ensemble import MemberLoss
from lstmcast.models.seglstm import SegLSTM, SegLSTMConfig
from lstmcast.models.seglstm_ensemble import BY_MEMBER_SIZE, SegLSTMEnsemble
from lstmcast.workflows.fitting import check_members

SIZES = {"horizon": 5, "lookback": 28, "segment": 7, "hidden": 16}


def member(ensemble: SegLSTMEnsemble, k: int, **extra) -> SegLSTM:
    """A SegLSTM with member k's weights."""
    single = SegLSTM(SegLSTMConfig(n_features=3, **SIZES, **extra))
    with torch.no_grad():
        single.embed[0].weight.copy_(ensemble.embed_w[k].T)
        single.embed[0].bias.copy_(ensemble.embed_b[k])
        single.lstm.weight_ih_l0.copy_(ensemble.w_ih[k].T)
        single.lstm.weight_hh_l0.copy_(ensemble.w_hh[k].T)
        single.lstm.bias_ih_l0.copy_(ensemble.b_ih[k])
        single.lstm.bias_hh_l0.copy_(ensemble.b_hh[k])
        single.position.copy_(ensemble.position[k])
        single.channel.copy_(ensemble.channel[k])
        single.head[1].weight.copy_(ensemble.head_w[k].T)
        single.head[1].bias.copy_(ensemble.head_b[k])
        if single.context is not None:
            single.context.weight.copy_(ensemble.context_w[k].T)
            single.context.bias.copy_(ensemble.context_b[k])
    return single.eval()


@pytest.mark.parametrize("extra", [{}, {"context": 2}, {"revin_mode": "mean"}])
def test_every_member_computes_what_a_seglstm_with_its_weights_computes(extra):
    torch.manual_seed(0)
    ensemble = models.build("seglstm", 3, members=4, **SIZES, **extra).eval()
    torch.manual_seed(0)
    first = models.build("seglstm", 3, **SIZES, **extra).eval()
    x = torch.randn(6, 28, 3)
    context = torch.randn(6, 2) if extra.get("context") else None
    ensemble.every_member = True
    outputs = ensemble(x, context)  # (B, H, T, K)
    assert outputs.shape == (6, 5, 3, 4)
    torch.testing.assert_close(outputs[..., 0], first(x, context))  # member 0: the same seed
    for k in range(4):
        torch.testing.assert_close(outputs[..., k], member(ensemble, k, **extra)(x, context))
    ensemble.every_member = False
    torch.testing.assert_close(ensemble(x, context), outputs.mean(-1))


@pytest.mark.parametrize("extra", [{}, {"context": 2}, {"revin_mode": "mean", "lookback": 26}])
def test_member_by_member_and_batched_give_the_same_forecasts_and_gradients(extra):
    sizes = {**SIZES, "dropout": 0.0, **extra}  # dropout off: the two draw their masks apart
    torch.manual_seed(0)
    ensemble = models.build("seglstm", 3, members=3, **sizes).train()
    x = torch.randn(6, sizes["lookback"], 3)
    context = torch.randn(6, 2) if extra.get("context") else None
    target = torch.randn(6, 5, 3)
    results = {}
    for batched in (False, True):
        ensemble.batched = batched
        ensemble.zero_grad()
        y = ensemble(x, context)  # (B, H, T, K)
        MemberLoss(nn.MSELoss())(y, target).backward()
        results[batched] = (y.detach(), [p.grad.clone() for p in ensemble.parameters()])
    torch.testing.assert_close(results[False][0], results[True][0])
    for by_member, together in zip(results[False][1], results[True][1], strict=True):
        torch.testing.assert_close(by_member, together)
    assert all(g.abs().sum() > 0 for g in results[False][1])  # every weight got a gradient


def test_the_cpu_runs_large_members_one_by_one_and_small_ones_batched():
    ensemble = models.build("seglstm", 3, members=2, **SIZES)  # 4 input segments, hidden 16
    rows = -(-BY_MEMBER_SIZE // (3 * 16))  # the fewest windows with B * T * D >= the size
    assert ensemble.by_member(torch.zeros(rows, 28, 3))
    assert not ensemble.by_member(torch.zeros(rows - 1, 28, 3))
    one_segment = models.build("seglstm", 3, members=2, **{**SIZES, "lookback": 7})
    assert not one_segment.by_member(torch.zeros(2 * rows, 7, 3))
    ensemble.batched = True
    assert not ensemble.by_member(torch.zeros(rows, 28, 3))
    ensemble.batched = False
    assert ensemble.by_member(torch.zeros(1, 28, 3))
    ensemble.batched = None
    x = torch.randn(rows, 28, 3)
    ensemble.eval()
    with torch.no_grad():
        by_default = ensemble(x)
        ensemble.batched = False
        torch.testing.assert_close(by_default, ensemble(x), rtol=0, atol=0)


def test_the_members_are_one_model_with_stacked_weights():
    ensemble = models.build("seglstm", 3, members=5, **SIZES)
    assert not any(isinstance(m, SegLSTM | nn.LSTM) for m in ensemble.modules())
    assert all(p.shape[0] == 5 for p in ensemble.parameters())  # a leading member axis
    single = models.build("seglstm", 3, **SIZES)
    count = sum(p.numel() for p in single.parameters())
    assert sum(p.numel() for p in ensemble.parameters()) == 5 * count


def test_the_loss_is_the_mean_of_the_members_losses_and_the_mean_keeps_kept_members():
    predicted, target = torch.randn(4, 3, 2, 5), torch.randn(4, 3, 2)
    expected = torch.stack([nn.functional.mse_loss(predicted[..., k], target) for k in range(5)])
    torch.testing.assert_close(MemberLoss(nn.MSELoss())(predicted, target), expected.mean())
    ensemble = models.build("seglstm", 3, members=3, **SIZES).eval()
    x = torch.randn(2, 28, 3)
    ensemble.every_member = True
    every = ensemble(x)
    ensemble.every_member = False
    ensemble.keep[1] = 0.0
    torch.testing.assert_close(ensemble(x), every[..., [0, 2]].mean(-1))


def test_a_member_that_blew_up_on_validation_leaves_the_mean():
    torch.manual_seed(0)
    config = make_config({"model": "seglstm", "lookback": 28, "horizon": 5, "ensemble": 4})
    model = models.build("seglstm", 2, members=4, **SIZES)
    with torch.no_grad():
        model.head_b[2] += 1e3  # member 2 forecasts 1000 standard deviations off
    series = torch.randn(200, 2)
    report = check_members(model, series, np.arange(100, 150), config, Layout.plain(2, 2))
    assert report["dropped"] == [2] and model.keep.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert report["val_mse"][2] > 1e5


def frame(rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    return pd.DataFrame(
        {
            "date": pd.date_range("2022-01-01", periods=rows, freq="D"),
            "y": np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.2, rows),
        }
    )


def test_an_ensemble_is_reported_saved_and_loaded(tmp_path):
    data = frame()
    fitted = lstmcast.Forecaster("seglstm", horizon=3, epochs=2, ensemble=3).fit(data)
    report = fitted.evaluate(data)
    section = report["ensemble"]
    assert section["members"] == 3 and section["kept"] == [0, 1, 2]
    assert len(section["mse_scaled"]) == 3 and section["spread_scaled"] >= 0
    assert len(section["val_mse_scaled"]) == 3 and section["dropped_on_validation"] == []
    loaded = lstmcast.load(fitted.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.predict(data), fitted.predict(data))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"intervals": (0.8,), "interval_method": "mc-dropout"}, "mc-dropout is not supported"),
        ({"intervals": (0.8,), "interval_method": "quantile"}, "point forecasts"),
    ],
)
def test_what_an_ensemble_does_not_take_is_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message):
        lstmcast.Forecaster(**{"model": "seglstm", "epochs": 1, "ensemble": 2, **options}).fit(
            frame()
        )


def _train_ensemble(epochs: int, checkpoint=None, callbacks=(), seed: int = 0):
    from lstmcast.engine.training import train

    torch.manual_seed(seed)
    rng = np.random.default_rng(0)
    t = np.arange(260)
    series = np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.3, (2, 260))
    series = torch.from_numpy(series.T.astype(np.float32))
    config = make_config(
        {
            "model": "seglstm",
            "lookback": 28,
            "horizon": 5,
            "ensemble": 3,
            "epochs": epochs,
            "patience": 2,
            "lr": 0.1,
            "seed": 0,
        }
    )
    model = models.build("seglstm", 2, members=3, **SIZES)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    val = np.arange(190, 227)
    result = train(
        model,
        series,
        np.arange(0, 180),
        val,
        config,
        n_targets=2,
        callbacks=callbacks,
        checkpoint=checkpoint,
    )
    return model, result, series, val, initial


def _member_val_losses(state, series, val) -> list[float]:
    """Each member's validation MSE with the weights `state`."""
    scratch = models.build("seglstm", 2, members=3, **SIZES).eval()
    scratch.load_state_dict(state)
    starts = torch.as_tensor(val)
    x = torch.stack([series[s : s + 28] for s in starts])
    y = torch.stack([series[s + 28 : s + 33] for s in starts])
    scratch.every_member = True
    with torch.no_grad():
        every = scratch(x)
    return [float(nn.functional.mse_loss(every[..., k], y)) for k in range(3)]


def test_each_member_keeps_the_weights_of_its_own_best_validation_epoch():
    # The first seed whose members peak at different epochs (which seed that is depends on the
    # CPU's float paths: seed 0 on an AVX2 machine, seed 1 on an AVX-512 one); each seed's
    # kept epochs are checked on the way
    for seed in range(4):
        snapshots: list[dict] = []

        def snapshot(epoch, snapshots=snapshots):
            state = epoch.model.state_dict().items()
            snapshots.append({k: v.detach().clone() for k, v in state})

        model, result, series, val, initial = _train_ensemble(40, callbacks=[snapshot], seed=seed)
        states = [initial, *snapshots]  # index = epoch
        losses = np.array([_member_val_losses(s, series, val) for s in states])  # (epochs+1, K)
        expected = [int(np.argmin(losses[:, k])) for k in range(3)]
        assert result.member_best_epochs == expected, seed
        if len(set(expected)) > 1:
            break
    assert len(set(expected)) > 1, "no seed of 4 gave members that peak at different epochs"
    for k, epoch in enumerate(expected):
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor[k], states[epoch][name][k]), (k, name)
    # training went on until the last member had gone `patience` epochs without improving
    assert result.stopped == "early_stopping" and len(result.history) == max(expected) + 2
    assert result.best_epoch == max(expected)
    assert "one per member" in result.message


def test_an_interrupted_ensemble_resumes_to_the_uninterrupted_result(tmp_path):
    from lstmcast.engine.checkpoint import Checkpoint

    straight, done, *_ = _train_ensemble(8, Checkpoint(tmp_path / "a", "x"))
    _train_ensemble(3, Checkpoint(tmp_path / "b", "x"))
    resumed, again, *_ = _train_ensemble(8, Checkpoint(tmp_path / "b", "x", resume=True))
    assert again.member_best_epochs == done.member_best_epochs
    assert [h["epoch"] for h in again.history] == [h["epoch"] for h in done.history]
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
