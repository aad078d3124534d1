"""One global model over many series: leakage, known-future covariates, predict, model files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import lstmcast
from lstmcast import DataError, Forecaster
from lstmcast.data.panel import window_series
from lstmcast.datasets.synthetic import synthetic_panel
from lstmcast.models import MODELS

L, H = 12, 3


def panel_frame(n_series: int = 6, n_rows: int = 120, seed: int = 0) -> pd.DataFrame:
    return synthetic_panel(n_series=n_series, n_rows=n_rows, seed=seed)


def forecaster(model: str = "lstm", **options) -> Forecaster:
    base = dict(id_col="id", targets=["sales"], epochs=2, batch_size=64)
    if model in ("lstm", "simple", "bidirectional"):
        base["layers"] = (8,)
    if model == "stacked":
        base["layers"] = (8, 4)
    if model == "seglstm":
        base["model_options"] = {"hidden": 16, "segment": 4}
    if model == "seasonal_naive":
        base["period"] = 12
    return Forecaster(model, lookback=L, horizon=H, **{**base, **options})


KNOWN = dict(future_covariates=["promo"], static=["region", "size"], id_embedding=3)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_globally_with_every_kind_of_input(name, tmp_path):
    frame = panel_frame()
    fc = forecaster(name, calendar="hour,dayofweek", **KNOWN).fit(frame)
    metrics = fc.evaluate(frame)
    assert metrics["n_series"] == 6 and set(metrics["per_series"]) == set(frame["id"])
    for section in metrics["per_series"].values():
        assert {"model", "repeat_last", "mean", "skill", "skill_vs_best"} <= set(section)
        best = section["best_baseline"]
        mse = {n: section[n]["scaled"]["mse"] for n in metrics["baselines"]}
        assert mse[best] == min(mse.values())  # each series its own best
        assert section["skill_vs_best"] == pytest.approx(
            1 - section["model"]["scaled"]["mse"] / mse[best]
        )
    fc.save(tmp_path / "m")
    loaded = lstmcast.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(
        loaded.backtest(frame)[0].predicted_scaled, fc.backtest(frame)[0].predicted_scaled
    )


def perturbed_after(frame: pd.DataFrame, series: str, stamp: pd.Timestamp, column: str):
    changed = frame.copy()
    late = (changed["id"] == series) & (changed["time"] > stamp)
    changed.loc[late, column] = changed.loc[late, column] * 3 + 17
    return changed


def test_no_target_value_after_a_windows_last_input_changes_its_forecast():
    frame = panel_frame()
    fc = forecaster(**KNOWN).fit(frame)
    result, panel = fc.backtest(frame)
    k = len(result.starts) // 2  # a window in the middle of the test windows
    origin_row = result.starts[k] + L - 1
    series = panel.ids[window_series(panel.bounds, result.starts[k : k + 1])[0]]
    changed = perturbed_after(frame, series, panel.time[origin_row], "sales")
    again, _ = fc.backtest(changed)
    np.testing.assert_array_equal(again.predicted_scaled[k], result.predicted_scaled[k])
    # windows of the same series whose inputs include changed rows do change
    later = k + 1 if again.series[k + 1] == again.series[k] else k - 1
    if result.starts[later] > result.starts[k]:
        assert not np.array_equal(again.predicted_scaled[later], result.predicted_scaled[later])


def test_a_past_covariate_after_the_origin_never_reaches_the_forecast():
    frame = panel_frame()
    fc = forecaster(covariates=["promo"]).fit(frame)  # promo as a past-only input here
    result, panel = fc.backtest(frame)
    k = len(result.starts) // 2
    origin_row = result.starts[k] + L - 1
    series = panel.ids[window_series(panel.bounds, result.starts[k : k + 1])[0]]
    changed = perturbed_after(frame, series, panel.time[origin_row], "promo")
    np.testing.assert_array_equal(
        fc.backtest(changed)[0].predicted_scaled[k], result.predicted_scaled[k]
    )


def test_a_known_future_covariate_inside_the_horizon_changes_the_forecast():
    frame = panel_frame()
    fc = forecaster(future_covariates=["promo"], epochs=4).fit(frame)
    result, panel = fc.backtest(frame)
    k = len(result.starts) // 2
    origin = panel.time[result.starts[k] + L - 1]
    series = panel.ids[window_series(panel.bounds, result.starts[k : k + 1])[0]]
    changed = frame.copy()
    inside = (
        (changed["id"] == series)
        & (changed["time"] > origin)
        & (changed["time"] <= origin + pd.Timedelta(hours=H))
    )
    changed.loc[inside, "promo"] = 1 - changed.loc[inside, "promo"]
    assert not np.array_equal(
        fc.backtest(changed)[0].predicted_scaled[k], result.predicted_scaled[k]
    )


def test_validation_and_test_values_never_reach_the_scalers():
    frame = panel_frame()
    fc = forecaster(epochs=1).fit(frame)
    changed = frame.copy()
    for i, name in enumerate(fc.state_.inputs.ids):
        split = fc.state_.split.splits[i]
        rows = changed.index[changed["id"] == name]
        after_train = rows[np.argsort(changed.loc[rows, "time"].to_numpy())][split.train[1] :]
        changed.loc[after_train, "sales"] = 1e6
    again = forecaster(epochs=1).fit(changed)
    np.testing.assert_array_equal(again.state_.scaler.center, fc.state_.scaler.center)
    np.testing.assert_array_equal(again.state_.scaler.scale, fc.state_.scaler.scale)


def future_rows(frame: pd.DataFrame, fc: Forecaster) -> pd.DataFrame:
    """Each series' next H hours with promo set and the target left empty."""
    rows = []
    for name, group in frame.groupby("id"):
        last = group["time"].max()
        for step in range(1, H + 1):
            rows.append({"id": name, "time": last + pd.Timedelta(hours=step), "promo": 1.0})
    return pd.DataFrame(rows)


def test_predict_reads_known_future_values_from_trailing_rows_or_a_future_table(tmp_path):
    frame = panel_frame()
    fc = forecaster(future_covariates=["promo"], epochs=3).fit(frame)
    ahead = future_rows(frame, fc)
    with pytest.raises(
        DataError,
        match=r"no value of known-future covariate 'promo' of series "
        r"'s0000' at 2024-",
    ):
        fc.predict(frame)
    from_file = fc.predict(frame, future=ahead)
    assert list(from_file.columns) == ["id", "time", "sales"] and len(from_file) == 6 * H
    trailing = pd.concat([frame, ahead], ignore_index=True)  # sales empty in the new rows
    pd.testing.assert_frame_equal(fc.predict(trailing), from_file)
    ahead_off = ahead.assign(promo=0.0)
    assert not np.allclose(fc.predict(frame, future=ahead_off)["sales"], from_file["sales"])
    one_gap = ahead.drop(index=4)
    with pytest.raises(DataError, match="known-future covariate 'promo'"):
        fc.predict(frame, future=one_gap)


def test_predict_writes_every_id_in_long_format_and_a_subset_on_request():
    frame = panel_frame()
    fc = forecaster(calendar="auto", holidays="US", epochs=1).fit(frame)
    out = fc.predict(frame)
    assert list(out["id"].unique()) == list(fc.state_.inputs.ids)
    for name, group in out.groupby("id"):
        last = frame.loc[frame["id"] == name, "time"].max()
        expected = pd.date_range(last, periods=H + 1, freq="h")[1:]
        assert list(group["time"]) == list(expected)
    subset = fc.predict(frame, ids=["s0003", "s0001"])
    assert list(subset["id"].unique()) == ["s0003", "s0001"]
    with pytest.raises(DataError, match="no series 'zzz'"):
        fc.predict(frame, ids=["zzz"])
    stranger = frame.assign(id=frame["id"].replace({"s0000": "new"}))
    with pytest.raises(DataError, match="series 'new' was not in the training data"):
        fc.predict(stranger)


def test_the_model_file_records_ids_scalers_static_encodings_and_roles(tmp_path):
    frame = panel_frame()
    fc = forecaster(calendar="hour", **KNOWN).fit(frame)
    fc.save(tmp_path / "m")
    content = json.loads((tmp_path / "m" / "config.json").read_text())
    inputs = content["inputs"]
    assert inputs["ids"] == list(fc.state_.inputs.ids) and inputs["id_col"] == "id"
    assert inputs["future_covariates"] == ["promo"] and inputs["calendar"] == ["hour"]
    assert inputs["static_numeric"] == ["size"] and inputs["static_categorical"] == ["region"]
    assert inputs["categories"]["region"] == ["east", "north", "south", "west"]
    assert np.asarray(content["scaler"]["center"]).shape == (6, 2)  # per series: sales, promo
    assert content["covariates"]["cardinalities"] == [4, 6]  # region, then the id
    loaded = lstmcast.load(tmp_path / "m", device="cpu")
    ahead = future_rows(frame, fc)
    pd.testing.assert_frame_equal(
        loaded.predict(frame, future=ahead), fc.predict(frame, future=ahead)
    )


def test_short_series_are_skipped_and_listed_in_the_report():
    frame = panel_frame()
    short = pd.DataFrame(
        {
            "id": "tiny",
            "time": pd.date_range("2024-03-01", periods=10, freq="h"),
            "sales": np.arange(10.0),
            "promo": 0.0,
            "region": "north",
            "size": 1.0,
        }
    )
    fc = forecaster(epochs=1).fit(pd.concat([frame, short], ignore_index=True))
    assert [name for name, _ in fc.skipped_] == ["tiny"]
    metrics = fc.evaluate(pd.concat([frame, short], ignore_index=True))
    assert metrics["skipped_series"][0]["id"] == "tiny" and "tiny" not in metrics["per_series"]


def test_a_wide_table_is_the_panel_of_one_series(frame):
    """Nothing changes for a wide table: its one series' scaler is today's Scaler."""
    fc = Forecaster("linear", lookback=L, horizon=H, epochs=1).fit(frame)
    assert isinstance(fc.scaler_, lstmcast.data.Scaler) and fc.state_.inputs.id_col is None
    assert fc.predict(frame).index.name == "date"
