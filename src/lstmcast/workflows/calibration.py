"""Prediction intervals: calibrated on the validation windows when `fit` runs, kept in the
model files, and turned into bands for any windows later.

Every method gives central intervals at the requested levels, per target and horizon step:

- conformal: split-conformal on the validation windows' absolute residuals of the point
  forecast; the band is point +- the residuals' ceil((n+1) level)-th smallest value. Any model.
- quantile: the model's quantile head (trained with the pinball loss); the band is the
  (1-level)/2 and (1+level)/2 quantiles, the point forecast the median.
- cqr: the same band widened (or narrowed) by the conformal quantile of the validation
  windows' conformity scores max(lower - y, y - upper) (Romano et al., 2019).
- mc-dropout: `mc_samples` passes with dropout on; the band is the samples' quantiles, the
  point forecast the ordinary (dropout off) forward pass, so point metrics do not change.
- spread: an ensemble's (`--ensemble K`) normalised conformal band (Lei et al., 2018): the
  validation residuals of the members' mean divided by the members' spread (their standard
  deviation, plus a floor of SPREAD_FLOOR x its validation median per step and target), and
  the band is the mean +- that quotient's conformal quantile x the window's own spread. The
  guarantee is split-conformal's; the band widens where the members disagree.

Adaptive conformal (`adaptive_gamma` > 0, conformal and cqr; Gibbs & Candes 2021): the guarantee
assumes validation and test are exchangeable; under a shift it under- or over-covers. Then
each (level, step, target) keeps its own miscoverage rate alpha_t, moved by gamma * (alpha -
miss) each time a window's outcome at that step becomes known (h + 1 windows later, windows
one row apart), and the band is the (1 - alpha_t) quantile of the validation scores (kept as a
grid of `GRID` quantiles). Only outcomes known at a window's origin shape its band; `predict`
runs the recursion over the windows after the validation split and uses where it ends.

repeat_last always gets its own conformal band from the same validation windows, so every
report can say whether the model's intervals are sharper than naive's. All widths live on the
scaled data; bands are mapped to original units through the scaler (a positive affine map).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from lstmcast.choices import IntervalMethod
from lstmcast.config import RunConfig
from lstmcast.engine.batching import Layout, gather_batch, predict_windows
from lstmcast.errors import ConfigError, DataError, ModelFileError
from lstmcast.evaluation.backtest import Bands
from lstmcast.evaluation.intervals import conformal_quantile
from lstmcast.models import supports_quantiles

GRID = 201  # quantiles of the validation scores kept for adaptive conformal
CONFORMAL = IntervalMethod.conformal.value
QUANTILE = IntervalMethod.quantile.value
CQR = IntervalMethod.cqr.value
MC_DROPOUT = IntervalMethod.mc_dropout.value
SPREAD = IntervalMethod.spread.value
# The spread is floored at this fraction of its validation median (per step and target): a
# window where the members happen to agree gets a narrow band, never one of zero width.
SPREAD_FLOOR = 0.1


T = TypeVar("T")


def need(value: T | None, what: str) -> T:
    """`value`, or a one-line error naming the part of the calibration that is missing (a
    model file edited by hand, or a method that does not keep it)."""
    if value is None:
        raise ModelFileError(
            f"the interval calibration has no {what}; retrain the model with --intervals"
        )
    return value


@dataclass
class Calibration:
    """What the intervals of a fitted model need. Widths are (K levels, H, V) on the scaled
    data: `model` the conformal half-widths (conformal) or corrections (cqr), None for the
    other methods; `naive` repeat_last's conformal half-widths."""

    method: str
    levels: tuple[float, ...]
    n_windows: int
    naive: np.ndarray
    model: np.ndarray | None = None
    quantiles: tuple[float, ...] = ()
    mc_samples: int = 0
    gamma: float = 0.0  # adaptive conformal's step; 0 = off
    score_grid: np.ndarray | None = None  # (K, GRID, H, V) validation score quantiles
    calibration_end: int = 0  # the row after the validation split
    spread_floor: np.ndarray | None = None  # (H, V) spread's floor (spread)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "levels": list(self.levels),
            "n_windows": self.n_windows,
            "naive": self.naive.tolist(),
            "model": None if self.model is None else self.model.tolist(),
            "quantiles": list(self.quantiles),
            "mc_samples": self.mc_samples,
            "gamma": self.gamma,
            "score_grid": None if self.score_grid is None else self.score_grid.tolist(),
            "calibration_end": self.calibration_end,
            "spread_floor": None if self.spread_floor is None else self.spread_floor.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Calibration:
        try:
            levels = tuple(float(v) for v in d["levels"])
            naive = np.asarray(d["naive"], dtype=np.float64)
            model = None if d.get("model") is None else np.asarray(d["model"], np.float64)
            calibration = cls(
                method=str(d["method"]),
                levels=levels,
                n_windows=int(d["n_windows"]),
                naive=naive,
                model=model,
                quantiles=tuple(float(v) for v in d.get("quantiles", [])),
                mc_samples=int(d.get("mc_samples", 0)),
                gamma=float(d.get("gamma", 0.0)),
                score_grid=None
                if d.get("score_grid") is None
                else np.asarray(d["score_grid"], dtype=np.float64),
                calibration_end=int(d.get("calibration_end", 0)),
                spread_floor=None
                if d.get("spread_floor") is None
                else np.asarray(d["spread_floor"], dtype=np.float64),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{where}: the interval calibration is malformed: {exc}") from exc
        shapes = [naive.shape] + ([] if model is None else [model.shape])
        if naive.ndim != 3 or naive.shape[0] != len(levels) or len(set(shapes)) != 1:
            raise ModelFileError(
                f"{where}: the interval calibration has widths of shape {naive.shape} for "
                f"{len(levels)} levels"
            )
        floor = calibration.spread_floor
        if floor is not None and (floor.shape != naive.shape[1:] or not (floor > 0).all()):
            raise ModelFileError(
                f"{where}: the interval calibration's spread_floor must be positive, of shape "
                f"{naive.shape[1:]} (horizon, targets); got shape {floor.shape}"
            )
        return calibration


def check_method(config: RunConfig, model: nn.Module | None = None) -> None:
    """A clear error when the run's interval method cannot work with its model: called with
    the config before the model is built (a quantile head?), and with the built model (any
    dropout for mc-dropout?)."""
    if not config.intervals:
        return
    method = config.interval_method
    if method in (QUANTILE, CQR) and not supports_quantiles(config.model):
        raise ConfigError(
            f"--interval-method {method} needs a model with a quantile head (lstm, simple, "
            f"stacked, bidirectional, seglstm); '{config.model}' has none: use "
            f"--interval-method conformal"
        )
    if method == MC_DROPOUT and model is not None and not has_dropout(model):
        raise ConfigError(
            f"--interval-method mc-dropout needs dropout; '{config.model}' has none here "
            f"(set --dropout, e.g. 0.2, or use --interval-method conformal)"
        )


def has_dropout(model: nn.Module) -> bool:
    return any(
        float(getattr(m, "p", 0.0)) > 0 for m in model.modules() if type(m).__name__ == "Dropout"
    )


@dataclass
class Outputs:
    """A model's forecasts of N windows: the point forecast (N, H, V) and, by method, the
    quantiles (N, H, V, Q) of its head, mc-dropout's samples (S, N, H, V) or an ensemble's
    member spread (N, H, V) with every member's forecasts (N, H, V, K)."""

    point: np.ndarray
    quantiles: np.ndarray | None = None
    samples: np.ndarray | None = None
    spread: np.ndarray | None = None
    members: np.ndarray | None = None


def model_outputs(
    model: nn.Module,
    series: torch.Tensor,
    starts: np.ndarray,
    lookback: int,
    method: str | None,
    quantiles: tuple[float, ...],
    mc_samples: int,
    layout: Layout | None = None,
    horizon: int = 1,
) -> Outputs:
    """Forecast every window start; what besides the point forecast depends on `method`.
    `layout` and `horizon` say where a run's covariates known in advance are (see
    `lstmcast.engine.batching.Layout`; None: every column is an input)."""
    if method == SPREAD:
        members = need(
            member_outputs(model, series, starts, lookback, layout, horizon), "ensemble members"
        )
        return ensemble_outputs(model, members)
    raw = predict_windows(model, series, starts, lookback, layout=layout, horizon=horizon)
    if quantiles and raw.ndim == 4:  # a quantile head: (N, H, V, Q)
        return Outputs(raw[..., quantiles.index(0.5)], quantiles=raw)
    outputs = Outputs(raw)
    if method == MC_DROPOUT:
        outputs.samples = dropout_samples(
            model, series, starts, lookback, mc_samples, layout, horizon
        )
    return outputs


def member_outputs(
    model: nn.Module,
    series: torch.Tensor,
    starts: np.ndarray,
    lookback: int,
    layout: Layout | None = None,
    horizon: int = 1,
) -> np.ndarray | None:
    """Every ensemble member's forecasts of these windows, (N, H, V, K) as the model gives them
    (scaled); None for a single model."""
    from lstmcast.models import ensemble_of

    ensemble = ensemble_of(model)
    if ensemble is None:
        return None
    ensemble.every_member = True
    try:
        return predict_windows(model, series, starts, lookback, layout=layout, horizon=horizon)
    finally:
        ensemble.every_member = False


def ensemble_outputs(model: nn.Module, members: np.ndarray) -> Outputs:
    """The point forecast (the kept members' mean or median, as the model computes it) and the kept
    members' spread (their standard deviation) from every member's forecasts (N, H, V, K)."""
    from lstmcast.models import ensemble_of

    ensemble = ensemble_of(model)
    # no windows (predict_windows gives (0, 0, 0)); a single model has no members to get here
    if members.ndim != 4 or ensemble is None:
        return Outputs(members, spread=np.zeros(members.shape))
    keep = ensemble.keep.cpu().numpy() > 0
    with torch.no_grad():
        point = ensemble.combine(torch.from_numpy(members).to(ensemble.keep.device))
    spread = members[..., keep].astype(np.float64).std(axis=-1)
    return Outputs(point.cpu().numpy(), spread=spread, members=members)


def dropout_samples(
    model: nn.Module,
    series: torch.Tensor,
    starts: np.ndarray,
    lookback: int,
    n: int,
    layout: Layout | None = None,
    horizon: int = 1,
) -> np.ndarray:
    """`n` forward passes with only the dropout layers in training mode: (n, N, H, V)."""
    was_training = model.training
    model.eval()
    dropouts = [m for m in model.modules() if type(m).__name__ == "Dropout"]
    try:
        for m in dropouts:
            m.train()
        draws = []
        for _ in range(n):
            with torch.no_grad():
                draws.append(
                    _forward_with_dropout(model, series, starts, lookback, layout, horizon)
                )
        return np.stack(draws)
    finally:
        model.train(was_training)


def _forward_with_dropout(
    model: nn.Module,
    series: torch.Tensor,
    starts: np.ndarray,
    lookback: int,
    layout: Layout | None,
    horizon: int,
) -> np.ndarray:
    # predict_windows switches the whole model to eval(); keep the dropout layers on instead
    index = torch.as_tensor(starts, dtype=torch.long, device=series.device)
    layout = layout or Layout.plain(series.shape[1], series.shape[1])
    chunks = [
        model(*gather_batch(series, index[i : i + 4096], lookback, horizon, layout))
        .float()
        .cpu()
        .numpy()
        for i in range(0, len(index), 4096)
    ]
    return np.concatenate(chunks)


def targets_of(
    scaled: np.ndarray, starts: np.ndarray, lookback: int, horizon: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The actual values (N, H, V) and the last observed row (N, V) of each window."""
    steps = starts[:, None] + lookback + np.arange(horizon)
    actual = scaled[steps, :n].astype(np.float64)
    return actual, scaled[starts + lookback - 1, :n].astype(np.float64)


def calibrate(
    model: nn.Module,
    series: torch.Tensor,
    scaled: np.ndarray,
    val_starts: np.ndarray,
    n_targets: int,
    config: RunConfig,
    layout: Layout | None = None,
) -> Calibration | None:
    """The calibration of a fitted model on the validation windows (None without intervals)."""
    if not config.intervals:
        return None
    method, levels = config.interval_method, config.intervals
    if len(val_starts) == 0:
        raise DataError(
            "prediction intervals are calibrated on the validation split, which is empty; "
            "set val_fraction > 0 (or val_start with test_start)"
        )
    L, H = config.lookback_rows, config.horizon
    actual, last = targets_of(scaled, val_starts, L, H, n_targets)
    naive_scores = np.abs(actual - last[:, None, :])
    naive = np.stack([conformal_quantile(naive_scores, level) for level in levels])
    quantiles = config.head_quantiles()
    calibration = Calibration(method, levels, len(val_starts), naive, quantiles=quantiles)
    if method == MC_DROPOUT:
        calibration.mc_samples = config.mc_samples
    if method == CONFORMAL:
        point = model_outputs(model, series, val_starts, L, None, (), 0, layout, H).point
        scores = np.abs(actual - point)
        calibration.model = np.stack([conformal_quantile(scores, level) for level in levels])
        _keep_scores(calibration, [scores] * len(levels), config, val_starts)
    if method == SPREAD:
        outputs = model_outputs(model, series, val_starts, L, SPREAD, (), 0, layout, H)
        spread = need(outputs.spread, "ensemble members' spread")
        floor = np.maximum(SPREAD_FLOOR * np.median(spread, axis=0), 1e-8)  # (H, V)
        scores = np.abs(actual - outputs.point) / (spread + floor)
        calibration.model = np.stack([conformal_quantile(scores, level) for level in levels])
        calibration.spread_floor = floor
    if method == CQR:
        head = need(
            model_outputs(model, series, val_starts, L, None, quantiles, 0, layout, H).quantiles,
            "quantile head output",
        )
        corrections, per_level = [], []
        for level in levels:
            scores = cqr_scores(head, quantiles, level, actual)
            corrections.append(conformal_quantile(scores, level))
            per_level.append(scores)
        calibration.model = np.stack(corrections)
        _keep_scores(calibration, per_level, config, val_starts)
    return calibration


def cqr_scores(
    head: np.ndarray, quantiles: tuple[float, ...], level: float, actual: np.ndarray
) -> np.ndarray:
    """CQR's conformity scores: how far outside the head's band each value lies (< 0 inside)."""
    low, high = _quantile_band(head, quantiles, level)
    return np.maximum(low - actual, actual - high)


def _keep_scores(
    calibration: Calibration, scores: list[np.ndarray], config: RunConfig, val_starts: np.ndarray
) -> None:
    """For adaptive conformal: each level's validation scores at GRID evenly spaced ranks
    (one sort per distinct score array: conformal's levels share theirs)."""
    if not config.adaptive_gamma:
        return
    calibration.gamma = config.adaptive_gamma
    grids: dict[int, np.ndarray] = {}
    for array in scores:
        if id(array) not in grids:
            ranks = np.rint(np.linspace(0, len(array) - 1, GRID)).astype(int)
            grids[id(array)] = np.sort(array, axis=0)[ranks]
    calibration.score_grid = np.stack([grids[id(array)] for array in scores])
    calibration.calibration_end = int(val_starts[-1] + config.lookback + config.horizon)


def _quantile_band(
    head: np.ndarray, quantiles: tuple[float, ...], level: float
) -> tuple[np.ndarray, np.ndarray]:
    low = quantiles.index(round((1 - level) / 2, 10))
    high = quantiles.index(round((1 + level) / 2, 10))
    return head[..., low].astype(np.float64), head[..., high].astype(np.float64)


def check_levels(calibration: Calibration | None, levels: tuple[float, ...], where: str) -> None:
    """Levels asked for after `fit` must be among those calibrated then."""
    if not levels:
        return
    if calibration is None:
        raise ConfigError(
            f"{where} has no interval calibration; train it with --intervals "
            f"{','.join(f'{level:g}' for level in levels)}"
        )
    missing = [level for level in levels if level not in calibration.levels]
    if missing:
        raise ConfigError(
            f"{where} was calibrated for levels {', '.join(f'{v:g}' for v in calibration.levels)}"
            f"; {missing[0]:g} is not among them (train with --intervals including it)"
        )


def bands(
    calibration: Calibration,
    levels: tuple[float, ...],
    outputs: Outputs,
    last: np.ndarray,
    actual: np.ndarray | None = None,
    alpha_end: dict[float, np.ndarray] | None = None,
) -> Bands:
    """The model's and repeat_last's bands at `levels` (calibrated ones) for these windows;
    `last` (N, V) is each window's last observed target row. Adaptive conformal needs the
    windows' `actual` values (N, H, V; windows one row apart, in order) or, for windows whose
    outcomes are unknown (predict), the rates `alpha_end` a run over earlier windows ended at."""
    lower, upper, naive_lower, naive_upper = [], [], [], []
    naive_point = np.repeat(last[:, None, :], outputs.point.shape[1], axis=1).astype(np.float64)
    point = outputs.point.astype(np.float64)
    for level in levels:
        k = calibration.levels.index(level)
        naive_lower.append(naive_point - calibration.naive[k])
        naive_upper.append(naive_point + calibration.naive[k])
        if calibration.method == CONFORMAL and calibration.gamma:
            width = _adaptive(
                calibration,
                level,
                np.abs(actual - point) if actual is not None else None,
                alpha_end,
            )
            low, high = point - width, point + width
        elif calibration.method == CONFORMAL:
            widths = need(calibration.model, "conformal widths")
            low, high = point - widths[k], point + widths[k]
        elif calibration.method in (QUANTILE, CQR):
            head = need(outputs.quantiles, "quantile head output")
            low, high = _quantile_band(head, calibration.quantiles, level)
            if calibration.method == CQR:
                correction = need(calibration.model, "cqr corrections")[k]
                if calibration.gamma:
                    scores = None if actual is None else np.maximum(low - actual, actual - high)
                    correction = _adaptive(calibration, level, scores, alpha_end)
                low, high = low - correction, high + correction
                # a negative correction may not cross the band over itself
                low, high = np.minimum(low, high), np.maximum(low, high)
        elif calibration.method == SPREAD:
            quotient = need(calibration.model, "spread multipliers")[k]
            floor = need(calibration.spread_floor, "spread floor")
            width = quotient * (need(outputs.spread, "ensemble members' spread") + floor)
            low, high = point - width, point + width
        else:  # mc-dropout
            samples = need(outputs.samples, "mc-dropout samples")
            low = np.quantile(samples, (1 - level) / 2, axis=0)
            high = np.quantile(samples, (1 + level) / 2, axis=0)
        lower.append(low)
        upper.append(high)
    stack = lambda arrays: np.stack(arrays, axis=-1)  # noqa: E731
    return Bands(levels, stack(lower), stack(upper), stack(naive_lower), stack(naive_upper))


def _adaptive(
    calibration: Calibration,
    level: float,
    scores: np.ndarray | None,
    alpha_end: dict[float, np.ndarray] | None,
) -> np.ndarray:
    """Adaptive widths (N, H, V) from these windows' own scores, or (1, H, V) at the rates
    an earlier run ended at (windows whose outcomes are unknown)."""
    if scores is not None:
        return adaptive_widths(calibration, level, scores)[0]
    return score_quantile(calibration, level, 1 - need(alpha_end, "adaptive rates")[level])[None]


def score_quantile(calibration: Calibration, level: float, p: np.ndarray) -> np.ndarray:
    """The validation scores' quantile (of `level`'s scores) at probabilities `p` (H, V), from
    the stored grid, on split-conformal's finite-sample scale ((n + 1) / n, capped at 1)."""
    grid = need(calibration.score_grid, "score grid")[calibration.levels.index(level)]
    n = calibration.n_windows
    position = np.clip(p * (n + 1) / n, 0.0, 1.0) * (grid.shape[0] - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, grid.shape[0] - 1)
    frac = position - low
    at = lambda index: np.take_along_axis(grid, index[None], axis=0)[0]  # noqa: E731
    return at(low) + frac * (at(high) - at(low))


def adaptive_widths(
    calibration: Calibration, level: float, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive conformal widths (N, H, V) for consecutive windows with conformity `scores`
    (N, H, V), and the rates (H, V) once every outcome is known. Window i's width uses only
    outcomes known at its origin: step h of window j is known h + 1 windows later."""
    N, H, _ = scores.shape
    target = 1 - level
    alpha = np.full(scores.shape[1:], target)
    missed = np.zeros(scores.shape, dtype=bool)
    widths = np.empty(scores.shape)
    steps = np.arange(H)

    def learn(known: np.ndarray) -> None:
        ok = (known >= 0) & (known < N)
        alpha[ok] += calibration.gamma * (target - missed[known[ok], steps[ok]])

    for i in range(N):
        learn(i - steps - 1)
        widths[i] = score_quantile(calibration, level, 1 - alpha)
        missed[i] = scores[i] > widths[i]
    for i in range(N, N + H):  # the outcomes still pending after the last window
        learn(i - steps - 1)
    return widths, alpha
