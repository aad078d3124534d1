"""Rolling-origin backtests: fold boundaries, no look-ahead, resume, bad plans."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import lstmcast
from lstmcast import ConfigError
from lstmcast.config import make_config
from lstmcast.data.panel import window_series
from lstmcast.files import staging_path
from lstmcast.workflows.backtest_folds import make_folds
from lstmcast.workflows.backtesting import Plan, backtest

CONFIG = dict(model="lstm", lookback=12, horizon=3, epochs=2, layers=(4,), batch_size=64)


def test_fold_boundaries_expanding_sliding_and_gap():
    config = make_config({"lookback": 10, "horizon": 2, "val_fraction": 0.1})
    folds = make_folds(200, 160, config, Plan(folds=4))
    origins = np.concatenate([f.origins for f in folds])
    np.testing.assert_array_equal(origins, np.arange(159, 198))  # targets in rows 160..199
    assert [len(f.origins) for f in folds] == [10, 10, 10, 9]
    for fold in folds:  # expanding: from row 0 up to and including the first origin
        assert fold.train_start == 0 and fold.train_end == fold.origins[0] + 1
        assert fold.n_val == int(fold.train_end * 0.1)
    gapped = make_folds(200, 160, config, Plan(folds=4, gap=5))
    assert [f.train_end for f in gapped] == [f.train_end - 5 for f in folds]
    sliding = make_folds(200, 160, config, Plan(folds=4, window="sliding", train_rows=50))
    assert all(f.train_end - f.train_start == 50 for f in sliding)
    stepped = make_folds(200, 160, config, Plan(folds=2, origin_step=5))
    assert np.all(np.diff(np.concatenate([f.origins for f in stepped])) == 5)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (dict(folds=50), r"--folds 50 needs at least 50 forecast origins.* has 46; use --folds 46"),
        (dict(window="sliding", train_rows=8), "--train-rows 8 is shorter than lookback 12"),
        (dict(window="sliding"), "--window sliding needs --train-rows"),
        (dict(gap=-1), "'gap' parameter must be an int >= 0"),
        (dict(origin_step=0), "'origin_step' parameter must be an int >= 1"),
        (dict(refit="sometimes"), "'refit' option takes every, never or a number"),
    ],
)
def test_bad_plans_name_the_option_and_the_limit(frame, plan, message):
    with pytest.raises(ConfigError, match=message):
        backtest(frame, make_config(CONFIG), Plan(**plan))


def fold_arrays(out, k):
    from safetensors.numpy import load_file

    return load_file(str(out / "folds" / f"fold_{k}.safetensors"))


def test_no_fold_reads_a_row_after_its_origin(frame, tmp_path):
    config, plan = make_config(CONFIG), Plan(folds=3)
    report = backtest(frame, config, plan, tmp_path / "a")
    third = report["folds"][2]
    origin_row = fold_arrays(tmp_path / "a", 3)["origins"][0]
    changed = frame.copy()
    changed.iloc[origin_row + 1 :, 1:] = changed.iloc[origin_row + 1 :, 1:] * 5 + 3
    later = backtest(changed, config, plan, tmp_path / "b")
    for k in (1, 2):  # earlier folds: every forecast the same
        a, b = fold_arrays(tmp_path / "a", k), fold_arrays(tmp_path / "b", k)
        np.testing.assert_array_equal(a["forecast"], b["forecast"])
    # the first fold's targets end before the change: its baselines score the same too
    assert later["folds"][0]["metrics"] == report["folds"][0]["metrics"]
    a, b = fold_arrays(tmp_path / "a", 3), fold_arrays(tmp_path / "b", 3)
    np.testing.assert_array_equal(a["forecast"][0], b["forecast"][0])  # trained before it
    assert not np.array_equal(a["forecast"][1:], b["forecast"][1:])  # later origins see it
    assert third["trained"]


@pytest.mark.parametrize(
    "refit, transform",
    [("every", "none"), ("never", "none"), ("2", "none"), ("never", "load=log-returns")],
)
def test_an_interrupted_backtest_resumes_at_the_first_unfinished_fold(
    frame, tmp_path, refit, transform
):
    config = make_config({**CONFIG, "transform": transform})
    plan = Plan(folds=4, refit=refit)
    whole = backtest(frame, config, plan, tmp_path / "whole")

    class Killed(Exception):
        pass

    def stop_after_two(summary):
        if summary["fold"] == 2:
            raise Killed

    with pytest.raises(Killed):
        backtest(frame, config, plan, tmp_path / "cut", on_fold=stop_after_two)
    assert not (tmp_path / "cut" / "folds" / "fold_3.json").exists()
    seen = []
    resumed = backtest(frame, config, plan, tmp_path / "cut", on_fold=seen.append)
    assert [s.get("resumed", False) for s in seen] == [True, True, False, False]
    for k in (3, 4):
        np.testing.assert_array_equal(
            fold_arrays(tmp_path / "whole", k)["forecast"],
            fold_arrays(tmp_path / "cut", k)["forecast"],
        )
    assert resumed["diebold_mariano"] == whole["diebold_mariano"]
    assert [f["trained"] for f in whole["folds"]] == [plan.trains(k) for k in range(4)]
    again = []
    backtest(frame, config, plan, tmp_path / "cut", on_fold=again.append)  # finished: reused
    assert all(s["resumed"] for s in again)
    with pytest.raises(ConfigError, match="holds a backtest of other data or options"):
        backtest(frame, make_config({**CONFIG, "epochs": 3}), plan, tmp_path / "cut")
    if transform != "none":  # a reused model read back from its file keeps its level side
        assert resumed["folds"][3]["metrics_trained"] == whole["folds"][3]["metrics_trained"]


def test_the_report_has_baselines_intervals_and_the_files(frame, tmp_path):
    report = lstmcast.backtest(
        frame,
        "lstm",
        out=tmp_path / "r",
        folds=2,
        period=12,
        intervals=(0.8,),
        **{k: v for k, v in CONFIG.items() if k != "model"},
    )
    fold = report["folds"][0]
    assert set(fold["metrics"]) == {"model", "repeat_last", "mean", "seasonal_naive"}
    assert report["baselines"] == ["repeat_last", "mean", "seasonal_naive"]
    mse = {n: report["aggregate"][n]["scaled"]["mse"]["mean"] for n in fold["metrics"]}
    best = min(report["baselines"], key=mse.__getitem__)
    assert report["best_baseline"] == best
    assert report["skill_vs_best"] == pytest.approx(1 - mse["model"] / mse[best])
    assert 0 <= fold["intervals"]["80%"]["coverage"] <= 1
    assert set(report["diebold_mariano"]) == {"squared", "absolute"}
    for name in ("backtest.json", "backtest_forecasts.csv", "backtest.png", "run.json"):
        assert (tmp_path / "r" / name).is_file()
    saved = json.loads((tmp_path / "r" / "backtest.json").read_text())
    assert saved["n_origins"] == report["n_origins"] == sum(f["n_origins"] for f in saved["folds"])

    table = pd.read_csv(tmp_path / "r" / "backtest_forecasts.csv")
    assert list(table.columns) == [
        "fold",
        "origin",
        "step",
        "target",
        "forecast",
        "actual",
        "repeat_last",
    ]
    assert len(table) == report["n_origins"] * 3 * 4  # origins x horizon x targets


@pytest.mark.parametrize("refit", ["every", "never"])
def test_each_forecast_is_aligned_with_its_origins_rows(frame, tmp_path, refit):
    """A fold group scales only the rows its windows read; the actuals and repeat_last saved
    for each origin must still be the data's rows after and at that origin."""
    config, plan = make_config(CONFIG), Plan(folds=3, refit=refit)
    backtest(frame, config, plan, tmp_path)
    values = frame.iloc[:, 1:].to_numpy()
    horizon = CONFIG["horizon"]
    for k in (1, 2, 3):
        arrays = fold_arrays(tmp_path, k)
        origins = arrays["origins"].astype(int)
        after = origins[:, None] + 1 + np.arange(horizon)
        np.testing.assert_allclose(arrays["actual"], values[after], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            arrays["repeat_last"][:, 0], values[origins], rtol=1e-5, atol=1e-5
        )
        assert np.isfinite(arrays["forecast"]).all()


TRANSFORM = "load=log-returns,price=diff"  # the other targets stay levels


def test_a_transformed_backtest_reports_levels_at_each_origin(frame, tmp_path):
    """Trained on log-returns and differences, scored in levels: the actuals, repeat_last and
    the levels' seasonal_naive are the data's own rows (the differencing drops the first row,
    so origin r of the trained rows is row r + 1 of the data); the trained space is beside."""
    config = make_config({**CONFIG, "transform": TRANSFORM, "period": 6})
    report = backtest(frame, config, Plan(folds=3), tmp_path)
    assert report["transform"] == {
        "load": "log-returns",
        "temp": "none",
        "price": "diff",
        "hour": "none",
    }
    values = frame.iloc[1:, 1:].to_numpy()  # the trained rows' levels
    horizon = CONFIG["horizon"]
    back = (np.arange(horizon) // 6 + 1) * 6
    for k, fold in enumerate(report["folds"], start=1):
        arrays = fold_arrays(tmp_path, k)
        origins = arrays["origins"].astype(int)
        after = origins[:, None] + 1 + np.arange(horizon)
        np.testing.assert_allclose(arrays["actual"], values[after], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(arrays["repeat_last"][:, 0], values[origins], rtol=1e-5)
        seasonal = values[after - back]
        mse = float(np.mean((seasonal - values[after]) ** 2))
        got = fold["metrics"]["seasonal_naive"]["original"]["mse"]
        assert got == pytest.approx(mse, rel=1e-6)
        assert set(fold["metrics_trained"]) == {"model", "repeat_last"}
        # a returns transform asks for the market measures, on the levels of this fold
        hits = fold["market"]["hit_rate"]["overall"]
        assert 0 <= hits["model"] <= 1 and hits["majority"] is not None
        assert hits["n"] <= len(origins) * horizon * 4
        assert "strategy" in fold["market"]["trading"]["per_variable"]["load"]
        assert (
            fold["metrics_trained"]["model"]["scaled"]["mse"]
            != fold["metrics"]["model"]["scaled"]["mse"]
        )


def test_a_transformed_backtest_reads_no_row_after_its_origin(frame, tmp_path):
    config, plan = make_config({**CONFIG, "transform": TRANSFORM}), Plan(folds=3)
    backtest(frame, config, plan, tmp_path / "a")
    origin = int(fold_arrays(tmp_path / "a", 3)["origins"][0]) + 1  # the data's row
    changed = frame.copy()
    changed.iloc[origin + 1 :, 1:] = changed.iloc[origin + 1 :, 1:] * 2 + 1
    backtest(changed, config, plan, tmp_path / "b")
    for k in (1, 2):
        np.testing.assert_array_equal(
            fold_arrays(tmp_path / "a", k)["forecast"], fold_arrays(tmp_path / "b", k)["forecast"]
        )
    a, b = fold_arrays(tmp_path / "a", 3), fold_arrays(tmp_path / "b", 3)
    np.testing.assert_array_equal(a["forecast"][0], b["forecast"][0])
    assert not np.array_equal(a["forecast"][1:], b["forecast"][1:])


def test_a_backtest_killed_inside_a_fold_goes_on_from_its_last_epoch(frame, tmp_path):
    config = make_config({**CONFIG, "epochs": 4, "patience": 0})
    plan = Plan(folds=2, refit="every")
    whole = backtest(frame, config, plan, tmp_path / "whole")

    class Killed(Exception):
        pass

    partial = staging_path(tmp_path / "cut")  # where the run is assembled (and resumed)

    def stop_in_fold_two(epoch):
        if (partial / "folds" / "fold_1.json").exists() and epoch.number == 3:
            raise Killed

    with pytest.raises(Killed):
        backtest(frame, config, plan, tmp_path / "cut", callbacks=[stop_in_fold_two])
    assert not (tmp_path / "cut").exists()  # nothing half-made at --out
    state = partial / "checkpoint" / "state.json"
    assert json.loads(state.read_text())["epoch"] == 2  # fold 2's epochs 1-2 are kept
    epochs = []
    backtest(frame, config, plan, tmp_path / "cut", callbacks=[lambda e: epochs.append(e.number)])
    assert epochs == [3, 4]  # only what was lost is trained again
    np.testing.assert_array_equal(
        fold_arrays(tmp_path / "whole", 2)["forecast"], fold_arrays(tmp_path / "cut", 2)["forecast"]
    )
    assert whole["diebold_mariano"] is not None
    assert not (tmp_path / "cut" / "checkpoint").exists() and not partial.exists()


# ---------------------------------------------------------------- many series (--id-col)
PANEL = dict(
    CONFIG, id_col="id", targets=["sales"], future_covariates=["promo"], static=["region", "size"]
)


def panel_frame():
    from lstmcast.datasets.synthetic import synthetic_panel

    return synthetic_panel(n_series=5, n_rows=160, seed=1)  # unequal, staggered series


def test_panel_folds_are_cut_by_time_and_no_series_trains_past_a_fold(tmp_path):
    from lstmcast.workflows.backtest_folds import make_panel_folds
    from lstmcast.workflows.fitting import Columns, read_dataset

    config = make_config(PANEL)
    panel = read_dataset(panel_frame(), Columns.of(config)).panel
    for plan in (Plan(folds=3), Plan(folds=3, gap=2), Plan(folds=3, refit="never")):
        folds = make_panel_folds(panel, config, plan)
        stamps = panel.time.asi8
        previous_last = -np.inf
        for fold in folds:
            times = stamps[fold.origins]
            assert times.min() > previous_last  # folds are disjoint blocks of time, in order
            assert np.all(np.diff(times) >= 0)  # each fold's origins in time order
            previous_last = times.max()
            source = 0 if plan.refit == "never" else fold.index
            for i, window in enumerate(folds[source].windows):
                if window is None:  # a series without a window in the model's fold
                    assert not np.any(window_series(panel.bounds, fold.origins) == i)
                    continue
                start, end, _ = window
                rows = stamps[panel.rows(i)][start:end]
                first = stamps[folds[source].origins].min()
                assert rows.max() <= first  # trains only on rows up to the fold's first time
                after = np.searchsorted(stamps[panel.rows(i)], first, side="right")
                assert end == after - plan.gap  # ... all of them, less the gap


def test_a_panel_backtest_reads_no_row_after_its_origin_in_any_series(tmp_path):
    frame = panel_frame()
    config, plan = make_config(PANEL), Plan(folds=3)
    report = backtest(frame, config, plan, tmp_path / "a")
    assert sum(f["n_series"] for f in report["folds"]) >= 5  # staggered: each fold some series
    third = fold_arrays(tmp_path / "a", 3)
    table = pd.read_csv(tmp_path / "a" / "backtest_forecasts.csv", parse_dates=["origin"])
    cut = table.loc[table["fold"] == 3, "origin"].min()  # fold 3's first origin time
    changed = frame.copy()
    later = changed["time"] > cut
    changed.loc[later, "sales"] = changed.loc[later, "sales"] * 3 + 7  # every series' future
    backtest(changed, config, plan, tmp_path / "b")
    for k in (1, 2):
        np.testing.assert_array_equal(
            fold_arrays(tmp_path / "a", k)["forecast"], fold_arrays(tmp_path / "b", k)["forecast"]
        )
    b = fold_arrays(tmp_path / "b", 3)
    at_first = third["origins"] == third["origins"][0]
    np.testing.assert_array_equal(third["forecast"][at_first], b["forecast"][at_first])
    assert not np.array_equal(third["forecast"], b["forecast"])


@pytest.mark.parametrize("many", [False, True])
def test_a_sliding_window_with_a_gap_scales_on_its_own_rows(frame, tmp_path, many):
    """Each fold's scaler is fitted on its sliding window's training rows alone (the gap and
    the validation rows left out), series by series."""
    from lstmcast.workflows import modelfile

    data = panel_frame() if many else frame
    config = make_config({**(PANEL if many else CONFIG), "val_fraction": 0.1})
    plan = Plan(folds=2, window="sliding", train_rows=60, gap=2)
    backtest(data, config, plan, tmp_path)
    from lstmcast.workflows.backtest_folds import make_panel_folds
    from lstmcast.workflows.fitting import Columns, read_dataset

    panel = read_dataset(data, Columns.of(config)).panel
    n = len(panel)  # the wide table's test span: its last 20% (the default)
    folds = (
        make_panel_folds(panel, config, plan)
        if many
        else make_folds(n, n - int(n * config.test_fraction), config, plan)
    )
    for fold in folds:
        _, state = modelfile.load(tmp_path / "models" / f"fold_{fold.index + 1}")
        for i, window in enumerate(fold.windows):
            if window is None:
                continue
            start, end, n_val = window
            assert end - start == min(60, end)  # a series shorter than the window: all of it
            rows = panel.values[panel.rows(i)][start : end - n_val]
            np.testing.assert_allclose(state.scaler.center[i], rows.mean(axis=0), rtol=1e-6)


def test_a_series_too_short_for_a_models_fold_is_not_forecast_with_that_model():
    from lstmcast.workflows.backtest_folds import make_panel_folds
    from lstmcast.workflows.fitting import Columns, read_dataset

    frame = panel_frame()
    late = frame[frame["id"] == "s0000"].tail(60)  # starts after fold 1's first origin time
    frame = pd.concat([frame[frame["id"] != "s0000"], late], ignore_index=True)
    config = make_config(PANEL)
    panel = read_dataset(frame, Columns.of(config)).panel
    short = panel.ids.index("s0000")

    def forecast(plan):
        folds = make_panel_folds(panel, config, plan)
        return [set(window_series(panel.bounds, f.origins).tolist()) for f in folds], folds

    every, folds = forecast(Plan(folds=3, refit="every"))
    never, _ = forecast(Plan(folds=3, refit="never"))
    assert folds[0].windows[short] is None and folds[1].windows[short] is not None
    assert short in every[1]  # its own fold trains on it
    assert short not in never[1]  # fold 1's model has no scaler for it
    assert never[1] == every[1] - {short}


@pytest.mark.parametrize("refit", ["every", "never"])
def test_a_mapped_backtest_is_the_in_memory_one_bit_for_bit(csv_file, tmp_path, monkeypatch, refit):
    """--memmap: each fold's scaler, scaled copy and baselines a chunk at a time from the
    mapped file; on a small table the forecasts are the in-memory run's, bit for bit."""
    monkeypatch.setenv("LSTMCAST_CACHE_DIR", str(tmp_path / "cache"))
    plan = Plan(folds=3, refit=refit, window="sliding", train_rows=120)
    memory = backtest(csv_file, make_config(CONFIG), plan, tmp_path / "memory")
    mapped = backtest(csv_file, make_config({**CONFIG, "memmap": True}), plan, tmp_path / "mapped")
    for k in (1, 2, 3):
        a, b = fold_arrays(tmp_path / "memory", k), fold_arrays(tmp_path / "mapped", k)
        for name in ("forecast", "actual", "repeat_last"):
            np.testing.assert_array_equal(a[name], b[name])
    assert mapped["diebold_mariano"] == memory["diebold_mariano"]
    for fold, same in zip(mapped["folds"], memory["folds"], strict=True):  # chunked sums
        got, expected = fold["metrics"]["mean"], same["metrics"]["mean"]
        assert got["original"]["mse"] == pytest.approx(expected["original"]["mse"], rel=1e-6)
    assert any((tmp_path / "cache").rglob("*.scaled.f32"))  # it did go through the mapping


@pytest.mark.parametrize("refit", ["every", "2"])
def test_each_folds_mean_baseline_is_the_mean_of_the_rows_its_model_trained_on(
    frame, tmp_path, refit
):
    """The rows its model trained on (not its validation rows, as `Forecaster.fit`), so no row
    after the fold's training window: the fold's own (refit every fold) or those of the fold
    that trained its model."""
    report = backtest(frame, make_config(CONFIG), Plan(folds=3, refit=refit), tmp_path)
    values = frame.iloc[:, 1:].to_numpy(dtype=np.float64)
    for k, fold in enumerate(report["folds"], start=1):
        trained = report["folds"][fold["model_from_fold"] - 1]
        (start, end), n_val = trained["train_rows"], trained["validation_rows"]
        actual = fold_arrays(tmp_path, k)["actual"].astype(np.float64)
        expected = np.mean((values[start : end - n_val].mean(axis=0) - actual) ** 2)
        assert fold["metrics"]["mean"]["original"]["mse"] == pytest.approx(expected, rel=1e-5)
