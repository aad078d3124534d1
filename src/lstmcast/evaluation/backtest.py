"""Forecasts over every window of a split, beside the repeat-last baseline, and the report
(`metrics.json`) comparing them on the scaled data and in original units."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstmcast.data.transform import rebuild
from lstmcast.evaluation.intervals import (
    crps_from_quantiles,
    interval_metrics,
    interval_verdict,
)
from lstmcast.evaluation.metrics import against_best, forecast_metrics, skill_score


@dataclass
class Bands:
    """Central prediction intervals of N windows at K levels: (N, H, V, K) each, on the scaled
    data; the model's and repeat_last's own (conformal) band."""

    levels: tuple[float, ...]
    lower: np.ndarray
    upper: np.ndarray
    naive_lower: np.ndarray
    naive_upper: np.ndarray


@dataclass(frozen=True)
class Backtest:
    """Forecasts of one split. Arrays are (N windows, H steps, V targets); `last_*` is the
    last observed target row of each window (N, V); `center`/`scale` (N, V) map each window
    back to original units (its series' scaler); `series` (N,) indexes `ids`, the series each
    window belongs to; `bands` the intervals when asked for, `quantiles_scaled` (N, H, V, Q) a
    quantile head's forecasts at levels `taus`."""

    starts: np.ndarray
    lookback: int
    actual_scaled: np.ndarray
    predicted_scaled: np.ndarray
    last_scaled: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    series: np.ndarray
    ids: tuple[str, ...] = ("",)
    bands: Bands | None = None
    quantiles_scaled: np.ndarray | None = None
    taus: tuple[float, ...] = ()
    series_start: np.ndarray | None = None  # (N,) the first stacked row of each one's series
    transformed: Backtest | None = None  # in levels: the same forecasts in the trained space
    far: dict[str, Any] | None = None  # inputs/forecasts far outside the training range
    # the other simple baselines' forecasts (N, H, V), scaled like `actual_scaled`: "mean",
    # and "seasonal_naive" with a season (see lstmcast.evaluation.baselines)
    baselines: dict[str, np.ndarray] = field(default_factory=dict)
    members: dict[str, Any] | None = None  # an ensemble's members on these windows

    @property
    def naive_scaled(self) -> np.ndarray:
        """repeat_last: the last observed value for every step."""
        return np.repeat(self.last_scaled[:, None, :], self.actual_scaled.shape[1], axis=1)

    def original(self, scaled: np.ndarray) -> np.ndarray:
        """(N, ..., V) scaled values in original units, each window by its series' scaler."""
        dtype = scaled.dtype if np.issubdtype(scaled.dtype, np.floating) else np.float64
        shape = (scaled.shape[0],) + (1,) * (scaled.ndim - 2) + (scaled.shape[-1],)
        scale = self.scale[:, : scaled.shape[-1]].astype(dtype).reshape(shape)
        center = self.center[:, : scaled.shape[-1]].astype(dtype).reshape(shape)
        return scaled * scale + center

    def original_levels(self, scaled: np.ndarray) -> np.ndarray:
        """`original` for (N, H, V, K) arrays (K levels after the variable axis)."""
        return np.moveaxis(self.original(np.moveaxis(scaled, -1, 1)), 1, -1)

    def subset(self, mask: np.ndarray) -> Backtest:
        """The windows where `mask` (N,) holds (e.g. one series')."""

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[mask]

        bands = None
        if self.bands is not None:
            b = self.bands
            bands = Bands(
                b.levels, b.lower[mask], b.upper[mask], b.naive_lower[mask], b.naive_upper[mask]
            )
        return Backtest(
            self.starts[mask],
            self.lookback,
            self.actual_scaled[mask],
            self.predicted_scaled[mask],
            self.last_scaled[mask],
            self.center[mask],
            self.scale[mask],
            self.series[mask],
            self.ids,
            bands,
            pick(self.quantiles_scaled),
            self.taus,
            pick(self.series_start),
            None if self.transformed is None else self.transformed.subset(mask),
            baselines={name: a[mask] for name, a in self.baselines.items()},
        )


def in_levels(
    backtest: Backtest,
    levels: np.ndarray,
    kinds: tuple[str, ...],
    unscale: tuple[np.ndarray, np.ndarray],
) -> Backtest:
    """`backtest` of transformed targets as a Backtest of their levels: forecasts rebuilt from
    each window's last observed level, actual values from the stacked (T, V) `levels`, on the
    scale of the levels' scaler `unscale` (each window's (center, scale), (N, V)); the original
    is kept as `.transformed`. Bands are mapped through the (monotone, per-step) rebuild, which
    only a non-cumulative transform allows (the config refuses intervals otherwise)."""
    L, H = backtest.lookback, backtest.actual_scaled.shape[1]
    last = levels[backtest.starts + L - 1].astype(np.float64)  # (N, V)
    actual = levels[backtest.starts[:, None] + L + np.arange(H)].astype(np.float64)
    center, scale = unscale

    def scaled(x: np.ndarray) -> np.ndarray:
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
        return (x - center.reshape(shape)) / scale.reshape(shape)

    def rebuilt(y_scaled: np.ndarray) -> np.ndarray:
        return scaled(rebuild(backtest.original(y_scaled), last, kinds))

    bands = None if backtest.bands is None else map_bands(backtest.bands, rebuilt)
    last_scaled = scaled(last[:, None, :])[:, 0, :]
    return Backtest(
        backtest.starts,
        L,
        scaled(actual),
        rebuilt(backtest.predicted_scaled),
        last_scaled,
        center,
        scale,
        backtest.series,
        backtest.ids,
        bands,
        None if backtest.quantiles_scaled is None else _rebuilt_quantiles(backtest, rebuilt),
        backtest.taus,
        backtest.series_start,
        transformed=backtest,
    )


def map_bands(bands: Bands, f: Callable[[np.ndarray], np.ndarray]) -> Bands:
    """`bands` with every edge (N, H, V) at each level mapped through the per-step `f`; each
    pair put back in order (a decreasing map swaps the edges)."""

    def mapped(edges: np.ndarray) -> np.ndarray:
        return np.stack([f(edges[..., k]) for k in range(edges.shape[-1])], axis=-1)

    lower, upper = mapped(bands.lower), mapped(bands.upper)
    naive_lower, naive_upper = mapped(bands.naive_lower), mapped(bands.naive_upper)
    return Bands(
        bands.levels,
        np.minimum(lower, upper),
        np.maximum(lower, upper),
        np.minimum(naive_lower, naive_upper),
        np.maximum(naive_lower, naive_upper),
    )


def _rebuilt_quantiles(backtest: Backtest, rebuilt: Any) -> np.ndarray:
    q = backtest.quantiles_scaled
    if q is None:
        raise ValueError("no quantiles")
    return np.sort(np.stack([rebuilt(q[..., k]) for k in range(q.shape[-1])], axis=-1), axis=-1)


def make_backtest(
    scaled: np.ndarray,
    unscale: tuple[np.ndarray, np.ndarray],
    series: np.ndarray,
    ids: tuple[str, ...],
    starts: np.ndarray,
    lookback: int,
    horizon: int,
    n_targets: int,
    predicted: np.ndarray,
    bands: Bands | None = None,
    quantiles_scaled: np.ndarray | None = None,
    taus: tuple[float, ...] = (),
    series_start: np.ndarray | None = None,
) -> Backtest:
    """The `Backtest` of forecasts already made for `starts`; `unscale` is each window's
    (center, scale) (N, V), `series` (N,) its index into `ids`."""
    steps = starts[:, None] + lookback + np.arange(horizon)  # (N, H) row of each target
    actual = scaled[steps, :n_targets]  # (N, H, V)
    last = scaled[starts + lookback - 1, :n_targets]  # (N, V)
    center, scale = unscale
    return Backtest(
        starts,
        lookback,
        actual,
        predicted,
        last,
        center,
        scale,
        series,
        ids,
        bands,
        quantiles_scaled,
        taus,
        series_start,
    )


def report(
    backtest: Backtest,
    columns: list[str],
    model_name: str,
    naive_mae_scaled: np.ndarray,
    naive_mae_original: np.ndarray,
) -> dict[str, Any]:
    """The evaluation report: the model beside repeat_last and the other simple baselines,
    the skill score against repeat_last and the verdict against the best baseline, overall
    and per variable."""
    sections = {}
    forecasts = {
        "model": backtest.predicted_scaled,
        "repeat_last": backtest.naive_scaled,
        **backtest.baselines,
    }
    for name, scaled_pred in forecasts.items():
        on_scale = forecast_metrics(
            backtest.actual_scaled, scaled_pred, backtest.last_scaled, naive_mae_scaled, columns
        )
        in_units = forecast_metrics(
            backtest.original(backtest.actual_scaled),
            backtest.original(scaled_pred),
            backtest.original(backtest.last_scaled),
            naive_mae_original,
            columns,
        )
        sections[name] = {
            "name": model_name if name == "model" else name,
            "scaled": on_scale["overall"],
            "original": in_units["overall"],
            "per_variable": {
                column: {
                    "scaled": on_scale["per_variable"][column],
                    "original": in_units["per_variable"][column],
                }
                for column in columns
            },
            "per_horizon": {"scaled": on_scale["per_horizon"], "original": in_units["per_horizon"]},
        }
    model_mse = sections["model"]["scaled"]["mse"]
    skill = skill_score(model_mse, sections["repeat_last"]["scaled"]["mse"])
    beats = skill is not None and skill > 0
    names = [n for n in forecasts if n != "model"]
    best, best_skill = against_best({n: sections[n]["scaled"]["mse"] for n in sections}, names)
    beats_best = best_skill is not None and best_skill > 0
    result = {
        "n_windows": len(backtest.starts),
        "model": sections["model"],
        **{name: sections[name] for name in names},
        "baselines": names,
        "skill": skill,
        "beats_naive": beats,
        "best_baseline": best,
        "skill_vs_best": best_skill,
        "beats_best_baseline": beats_best,
        "verdict": _verdict(model_name, best, best_skill, beats_best, skill),
        "per_variable": _per_variable_verdicts(sections, names, columns),
    }
    if backtest.bands is not None:
        result["intervals"] = interval_report(backtest, columns)
    return result


def _verdict(
    model: str, best: str, best_skill: float | None, beats_best: bool, skill: float | None
) -> str:
    """One line: the model against the best simple baseline (and repeat_last when that is
    not the best)."""
    against = "" if best == "repeat_last" else f"; skill against repeat_last {_rounded(skill)}"
    if beats_best:
        return (
            f"{model} beats the best simple baseline ({best}): skill {best_skill:.3f} "
            f"(1 - model MSE / {best} MSE){against}"
        )
    return (
        f"{model} does NOT beat the best simple baseline ({best}, skill {_rounded(best_skill)}):"
        f" {best} is at least as good{against}"
    )


def _per_variable_verdicts(
    sections: dict[str, Any], baselines: list[str], columns: list[str]
) -> dict[str, Any]:
    """Per variable: its own best simple baseline and the model's skill against it and
    against repeat_last. The overall verdict averages variables on the scaled data; this says
    which of them the model helps with."""
    out = {}
    for column in columns:
        mse = {n: sections[n]["per_variable"][column]["scaled"]["mse"] for n in sections}
        best, skill_vs_best = against_best(mse, baselines)
        out[column] = {
            "best_baseline": best,
            "skill_vs_best": skill_vs_best,
            "beats_best_baseline": skill_vs_best is not None and skill_vs_best > 0,
            "skill": skill_score(mse["model"], mse["repeat_last"]),
        }
    return out


def per_series_report(
    backtest: Backtest,
    columns: list[str],
    model_name: str,
    naive_mae_scaled: np.ndarray,
    naive_mae_original: np.ndarray,
) -> dict[str, Any]:
    """Per series, keyed by series id: the model's and that series' repeat_last's overall and
    per-variable metrics (scaled and original units), the other baselines' overall metrics,
    the skill against repeat_last and against that series' best simple baseline."""
    out: dict[str, Any] = {}
    for k in np.unique(backtest.series):
        sub = backtest.subset(backtest.series == k)
        full = report(
            Backtest(**{**sub.__dict__, "bands": None}),
            columns,
            model_name,
            naive_mae_scaled,
            naive_mae_original,
        )
        out[backtest.ids[int(k)]] = {
            "n_windows": full["n_windows"],
            "skill": full["skill"],
            "beats_naive": full["beats_naive"],
            "best_baseline": full["best_baseline"],
            "skill_vs_best": full["skill_vs_best"],
            "beats_best_baseline": full["beats_best_baseline"],
            **{
                name: {
                    "scaled": full[name]["scaled"],
                    "original": full[name]["original"],
                    "per_variable": full[name]["per_variable"],
                }
                for name in ("model", "repeat_last")
            },
            # the others overall only: a panel of many series would carry their variables twice
            **{
                name: {"scaled": full[name]["scaled"], "original": full[name]["original"]}
                for name in full["baselines"]
                if name != "repeat_last"
            },
        }
    return out


def interval_report(backtest: Backtest, columns: list[str]) -> dict[str, Any]:
    """Coverage, width, interval score and pinball loss of each level for the model and for
    repeat_last's conformal band (original units, and overall on the scaled data), the CRPS
    from the quantiles each has, and one verdict line per level."""
    bands = backtest.bands
    if bands is None:
        raise ValueError("interval_report needs a Backtest with bands (forecast with intervals)")
    levels = list(bands.levels)
    actual = backtest.actual_scaled
    out: dict[str, Any] = {"levels": levels}
    for name, (low, high, point) in {
        "model": (bands.lower, bands.upper, backtest.predicted_scaled),
        "repeat_last": (bands.naive_lower, bands.naive_upper, backtest.naive_scaled),
    }.items():
        in_units = interval_metrics(
            backtest.original(actual),
            backtest.original_levels(low),
            backtest.original_levels(high),
            levels,
            columns,
        )
        on_scale = interval_metrics(actual, low, high, levels, columns)
        if name == "model" and backtest.quantiles_scaled is not None:
            taus, quantiles = list(backtest.taus), backtest.quantiles_scaled
        else:  # the band ends and the point forecast as the median
            taus, quantiles = _band_quantiles(levels, low, high, point)
        out[name] = {
            **in_units,
            "scaled": on_scale["overall"],
            "crps": crps_from_quantiles(
                backtest.original(actual), backtest.original_levels(quantiles), taus
            ),
            "crps_scaled": crps_from_quantiles(actual, quantiles, taus)["overall"],
        }
    out["verdict"] = interval_verdict(out["model"]["scaled"], out["repeat_last"]["scaled"])
    return out


def _band_quantiles(
    levels: list[float], low: np.ndarray, high: np.ndarray, point: np.ndarray
) -> tuple[list[float], np.ndarray]:
    """The quantile forecasts a set of central bands stands for, increasing: the lower ends
    (widest first), the point forecast as the median, the upper ends."""
    order = np.argsort(levels)[::-1]  # widest band first
    taus = [(1 - levels[k]) / 2 for k in order] + [0.5] + [(1 + levels[k]) / 2 for k in order[::-1]]
    arrays = [low[..., k] for k in order] + [point] + [high[..., k] for k in order[::-1]]
    return taus, np.stack(arrays, axis=-1)


def forecast_frame(
    backtest: Backtest,
    columns: list[str],
    time: pd.DatetimeIndex | None,
    id_col: str | None = None,
) -> pd.DataFrame:
    """Long table: one row per window origin, step and variable, in original units (levels;
    with a target transform also the trained values, `*_transformed`); with
    `id_col`, a first column of that name holds each row's series id. Without a time column
    the origin and time are row numbers within the series."""
    n, horizon, n_vars = backtest.actual_scaled.shape
    origin_rows = backtest.starts + backtest.lookback - 1
    target_rows = origin_rows[:, None] + 1 + np.arange(horizon)  # (N, H)
    if time is not None:
        origins, targets = time[origin_rows], time[target_rows.ravel()]
    else:  # row numbers within each window's own series
        first = backtest.series_start
        first = np.zeros(n, dtype=np.int64) if first is None else first
        origins, targets = origin_rows - first, (target_rows - first[:, None]).ravel()
    ids = np.asarray(backtest.ids, dtype=object)
    series_col = {id_col: np.repeat(ids[backtest.series], horizon * n_vars)} if id_col else {}
    frame = pd.DataFrame(
        {
            **series_col,
            "origin": np.repeat(np.asarray(origins), horizon * n_vars),
            "time": np.repeat(np.asarray(targets), n_vars),
            "step": np.tile(np.repeat(np.arange(1, horizon + 1), n_vars), n),
            "variable": np.tile(np.asarray(columns), n * horizon),
            "actual": backtest.original(backtest.actual_scaled).ravel(),
            "forecast": backtest.original(backtest.predicted_scaled).ravel(),
            "repeat_last": backtest.original(backtest.naive_scaled).ravel(),
        }
    )
    if backtest.transformed is not None:  # the same forecasts in the trained space
        trained = backtest.transformed
        frame["actual_transformed"] = trained.original(trained.actual_scaled).ravel()
        frame["forecast_transformed"] = trained.original(trained.predicted_scaled).ravel()
    if backtest.bands is not None:
        lower = backtest.original_levels(backtest.bands.lower)
        upper = backtest.original_levels(backtest.bands.upper)
        for k, level in enumerate(backtest.bands.levels):
            frame[f"lower_{level_name(level)}"] = lower[..., k].ravel()
            frame[f"upper_{level_name(level)}"] = upper[..., k].ravel()
    return frame


def level_name(level: float) -> str:
    """0.8 -> '80', 0.975 -> '97.5': how a level names its columns."""
    return f"{round(level * 100, 4):g}"


def _rounded(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
