"""Prediction intervals: split-conformal half-widths and the scores that say whether they held.

A point forecast alone cannot say how far to trust it. lstmcast widens each forecast into a
central interval using split conformal prediction: the absolute residuals of the N validation
windows are the calibration scores, and `conformal_quantile` picks the half-width that covers
a fresh, exchangeable window with probability at least `level` whatever the error
distribution. On the test split the intervals are then checked here, beside the same
construction around the naive (repeat_last) forecast, so a reader can see both whether the
intervals held (coverage) and whether they are worth having (width, interval score, pinball
loss, CRPS) compared with the naive band.

Shapes used throughout (as in `metrics`):
    N  windows (forecast origins)
    H  horizon steps (step 1 is the first forecast step)
    V  target variables (columns)
    K  interval levels, e.g. (0.8, 0.95)
    Q  quantile levels (taus) of a quantile forecast

`interval_metrics` and `crps_from_quantiles` return `{"overall", "per_variable",
"per_horizon"}` sections like `forecast_metrics`: `per_variable` is keyed by column name and
`per_horizon` by the step as a string, "1" (the first forecast step) to str(H), so the keys
are the same before and after a JSON round trip. Every number is a
plain Python `float`/`int`/`bool`, and a non-finite one is `None`, never NaN, so the result can
go straight into `json.dumps(..., allow_nan=False)`. All sums are accumulated in float64,
whatever the input dtype (models emit float32).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmcast.errors import ConfigError, DataError
from lstmcast.evaluation.metrics import as_finite64, check_columns, json_float

__all__ = [
    "CALIBRATION_TOLERANCE",
    "conformal_quantile",
    "crps_from_quantiles",
    "interval_metrics",
    "interval_score",
    "interval_verdict",
    "level_key",
    "min_calibration_windows",
    "pinball",
    "sharper",
]

# An interval counts as calibrated when its empirical coverage is within 2 percentage points
# of its nominal level.
CALIBRATION_TOLERANCE = 0.02

# Products such as 100 * 0.55 come out as 55.00000000000001 in floating point; a plain ceil
# would then ask for one order statistic too many. Values this close to an integer are that
# integer.
_INTEGER_SLACK = 1e-9

# An index into (N, H, V) picking the cells of one section.
_Index = tuple[slice | int, ...]

# One level block: level, coverage, width, interval_score, pinball, calibrated.
LevelSummary = dict[str, float | bool | None]


# --------------------------------------------------------------------------------------------
# Split-conformal quantile
# --------------------------------------------------------------------------------------------


def min_calibration_windows(level: float) -> int:
    """The fewest calibration windows N for which a `level` split-conformal interval is finite.

    The interval needs the k-th smallest of N scores with `k = ceil((N + 1) * level)`, which
    exists only when `k <= N`, i.e. `N >= level / (1 - level)`: 4 for 0.8, 9 for 0.9, 19 for
    0.95. Computed with the same float-robust ceil as `conformal_quantile`, so the two agree.
    """
    lv = _check_level(level, "level")
    n = max(1, _ceil(lv / (1.0 - lv)) - 1)
    while n > 1 and _conformal_rank(n - 1, lv) <= n - 1:
        n -= 1
    while _conformal_rank(n, lv) > n:
        n += 1
    return n


def conformal_quantile(scores: npt.ArrayLike, level: float) -> np.ndarray:
    """Split-conformal half-width: the k-th smallest calibration score, `k = ceil((N+1)*level)`.

    `scores` is `(N, ...)`: the conformity scores of N calibration windows (e.g. `(N, H, V)`,
    one per horizon step and target), normally the absolute residuals `|actual - forecast|`.
    Taking the k-th smallest rather than the plain `level` quantile is what makes the interval
    `forecast +- q` cover a fresh exchangeable window with probability at least `level` (and
    below `level + 1/(N+1)` when scores are continuous) for finite N. The guarantee holds for
    any real-valued score, so negative scores are accepted: conformalized quantile regression
    scores `max(lower - y, y - upper)`, which is negative inside the band.

    Returns a float64 array of shape `scores.shape[1:]`. Raises `DataError` when N is too small
    for `level` (see `min_calibration_windows`).
    """
    lv = _check_level(level, "level")
    s = as_finite64(scores, "scores")
    if s.ndim < 1:
        raise ConfigError(
            f"The 'scores' argument must be an array (N, ...) of N calibration windows. "
            f"Got shape {s.shape} instead."
        )
    n = int(s.shape[0])
    k = _conformal_rank(n, lv)
    if k > n:
        need = min_calibration_windows(lv)
        raise DataError(
            f"the validation split has {n} windows; a {lv:g} conformal interval needs at "
            f"least {need}; raise val_fraction or lower the level"
        )
    return np.partition(s, k - 1, axis=0)[k - 1]


def _conformal_rank(n: int, level: float) -> int:
    """`ceil((n + 1) * level)`, robust to float error."""
    return _ceil((n + 1) * level)


def _ceil(x: float) -> int:
    nearest = round(x)
    if abs(x - nearest) <= _INTEGER_SLACK * max(1.0, abs(x)):
        return int(nearest)
    return math.ceil(x)


# --------------------------------------------------------------------------------------------
# Elementwise scores
# --------------------------------------------------------------------------------------------


def pinball(actual: npt.ArrayLike, quantile: npt.ArrayLike, tau: npt.ArrayLike) -> np.ndarray:
    """Elementwise pinball (quantile) loss `max(tau * (y - q), (tau - 1) * (y - q))`.

    The loss a `tau`-quantile forecast `q` is scored by: its expectation is smallest when `q`
    is the true `tau`-quantile, so lower is better. Arguments broadcast together; `tau` must be
    in [0, 1]. Returns float64.
    """
    y = as_finite64(actual, "actual")
    q = as_finite64(quantile, "quantile")
    t = as_finite64(tau, "tau")
    if np.any((t < 0) | (t > 1)):
        raise ConfigError(
            f"The 'tau' argument must be in [0, 1]. Got {np.unique(t).tolist()} instead."
        )
    _check_broadcast({"actual": y, "quantile": q, "tau": t})
    diff = y - q
    return np.maximum(t * diff, (t - 1.0) * diff)


def interval_score(
    actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike, level: npt.ArrayLike
) -> np.ndarray:
    """Elementwise Winkler (interval) score of the central `level` interval `[lower, upper]`.

    `(u - l) + (2/alpha) * (l - y) * [y < l] + (2/alpha) * (y - u) * [y > u]` with
    `alpha = 1 - level`: the width, plus a penalty for each miss that grows with its distance.
    Lower is better; it rewards narrow intervals only while they keep covering. Arguments
    broadcast together; `level` must be in (0, 1) and `lower <= upper`. Returns float64.
    """
    y = as_finite64(actual, "actual")
    lo = as_finite64(lower, "lower")
    hi = as_finite64(upper, "upper")
    lv = as_finite64(level, "level")
    if np.any((lv <= 0) | (lv >= 1)):
        raise ConfigError(
            f"The 'level' argument must be in (0, 1). Got {np.unique(lv).tolist()} instead."
        )
    _check_broadcast({"actual": y, "lower": lo, "upper": hi, "level": lv})
    _check_ordered(lo, hi)
    scale = 2.0 / (1.0 - lv)
    below = np.maximum(lo - y, 0.0)  # (l - y) * [y < l]
    above = np.maximum(y - hi, 0.0)  # (y - u) * [y > u]
    return (hi - lo) + scale * below + scale * above


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def level_key(level: float) -> str:
    """The key a level is reported under: 0.8 -> "80%", 0.975 -> "97.5%"."""
    return f"{round(float(level) * 100, 4):g}%"


def interval_metrics(
    actual: npt.ArrayLike,
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
    levels: Sequence[float] | npt.ArrayLike,
    columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score `(N, H, V, K)` central intervals, one per level in `levels`, against `(N, H, V)`
    actuals.

    `levels` is `(K,)`, strictly ascending in (0, 1); `lower[..., k]` and `upper[..., k]` bound
    the interval for `levels[k]`. `columns` names the V variables (default "0", "1", ...).

    Returns `{"overall": {...}, "per_variable": {column: {...}}, "per_horizon": {step: {...}}}`
    (step keys "1" to str(H)), each block mapping a level key (`level_key`, e.g. "80%") to:

    - `level`: the nominal level;
    - `coverage`: fraction of cells with `lower <= actual <= upper`;
    - `width`: mean `upper - lower`;
    - `interval_score`: mean Winkler score (`interval_score`);
    - `pinball`: mean of the pinball losses of `lower` at `tau = (1 - level) / 2` and of
      `upper` at `tau = (1 + level) / 2`, averaged over the two;
    - `calibrated`: `|coverage - level| <= 0.02`.
    """
    a = as_finite64(actual, "actual")
    lo = as_finite64(lower, "lower")
    hi = as_finite64(upper, "upper")
    lv = _check_levels(levels, "levels")
    _check_actual(a)
    expected = (*a.shape, lv.size)
    for name, arr in (("lower", lo), ("upper", hi)):
        if arr.shape != expected:
            raise ConfigError(
                f"The '{name}' argument must have shape (N, H, V, K) = {expected} "
                f"(K = len(levels)). Got {arr.shape} instead."
            )
    _check_ordered(lo, hi)
    names = check_columns(columns, a.shape[2])
    keys = _level_keys(lv)

    y = a[..., None]  # (N, H, V, 1) against (N, H, V, K)
    cells = {
        "coverage": ((lo <= y) & (y <= hi)).astype(np.float64),
        "width": hi - lo,
        "interval_score": interval_score(y, lo, hi, lv),
        "pinball": 0.5 * (pinball(y, lo, (1.0 - lv) / 2.0) + pinball(y, hi, (1.0 + lv) / 2.0)),
    }

    def summary(sel: _Index) -> dict[str, LevelSummary]:
        return {key: _level_summary(cells, sel, k, float(lv[k])) for k, key in enumerate(keys)}

    return _sections(summary, names, a.shape[1])


def crps_from_quantiles(
    actual: npt.ArrayLike,
    quantiles: npt.ArrayLike,
    taus: Sequence[float] | npt.ArrayLike,
    columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Mean CRPS of a quantile forecast, approximated from its quantiles.

    The CRPS equals `2 * integral over tau in (0, 1) of pinball(y, q_tau, tau)`; this replaces
    the integral by the mean over the given `taus`, so it is an approximation that improves
    with more, evenly spread taus (midpoints `(i - 0.5) / Q` work well). Lower is better, and
    it is in the units of the data.

    `quantiles` is `(N, H, V, Q)`, meant to be non-decreasing along the last axis; `taus` is
    `(Q,)`, strictly ascending in (0, 1). Crossing quantiles (e.g. a point forecast used as the
    median that falls outside a band) are put in order first: a quantile function cannot
    decrease, and sorting never raises the score (by the rearrangement inequality), so a
    forecaster gains nothing from crossings and a report is not lost to one.
    `columns` names the V variables (default "0", "1", ...).

    Returns `{"overall": float, "per_variable": {column: float}, "per_horizon": {step: float}}`.
    """
    a = as_finite64(actual, "actual")
    q = as_finite64(quantiles, "quantiles")
    t = _check_levels(taus, "taus")
    _check_actual(a)
    expected = (*a.shape, t.size)
    if q.shape != expected:
        raise ConfigError(
            f"The 'quantiles' argument must have shape (N, H, V, Q) = {expected} "
            f"(Q = len(taus)). Got {q.shape} instead."
        )
    q = np.sort(q, axis=-1)  # monotone rearrangement; a no-op for ordered quantiles
    names = check_columns(columns, a.shape[2])
    crps = 2.0 * pinball(a[..., None], q, t).mean(axis=-1)  # (N, H, V)

    def summary(sel: _Index) -> float | None:
        return json_float(crps[sel].mean())

    return _sections(summary, names, a.shape[1])


# --------------------------------------------------------------------------------------------
# Verdict
# --------------------------------------------------------------------------------------------


def sharper(model_level: Mapping[str, Any], naive_level: Mapping[str, Any]) -> bool:
    """Whether the model's interval beats the naive one: a lower mean interval score.

    The interval score charges for width and for misses, so "sharper" here means narrower
    without paying for it in coverage. Takes one level block of each (e.g.
    `overall["80%"]`); a missing (`None`) score is never sharper.
    """
    mine = model_level.get("interval_score")
    theirs = naive_level.get("interval_score")
    if mine is None or theirs is None:
        return False
    return float(mine) < float(theirs)


def interval_verdict(model: Mapping[str, Any], naive: Mapping[str, Any]) -> list[str]:
    """One plain sentence per level comparing the model's intervals with repeat_last's.

    `model` and `naive` are the `overall` sections of two `interval_metrics` results over the
    same levels. E.g. "80% interval: coverage 0.791 (calibrated: within 2 points of 0.8),
    mean width 1.23, interval score 2.05 against repeat_last's 2.61 (sharper than naive)".
    """
    if set(model) != set(naive):
        raise ConfigError(
            f"The 'model' and 'naive' sections must hold the same levels. "
            f"Got {list(model)} and {list(naive)}."
        )
    return [_sentence(key, model[key], naive[key]) for key in model]


def _sentence(key: str, mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> str:
    level = float(mine["level"])
    points = f"{round(CALIBRATION_TOLERANCE * 100, 4):g} points"
    if mine.get("calibrated"):
        calibration = f"calibrated: within {points} of {level:g}"
    else:
        calibration = f"NOT calibrated: more than {points} from {level:g}"
    verdict = "sharper than naive" if sharper(mine, theirs) else "not sharper than naive"
    coverage = mine.get("coverage")
    return (
        f"{key} interval: coverage {'n/a' if coverage is None else f'{coverage:.3f}'} "
        f"({calibration}), mean width {_fmt(mine.get('width'))}, "
        f"interval score {_fmt(mine.get('interval_score'))} against repeat_last's "
        f"{_fmt(theirs.get('interval_score'))} ({verdict})"
    )


def _fmt(x: float | None) -> str:
    """Short human number: 2 decimals from 1 up, 3 significant digits below."""
    if x is None:
        return "n/a"
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.3g}"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _level_summary(
    cells: Mapping[str, np.ndarray], sel: _Index, k: int, level: float
) -> LevelSummary:
    """One level's block over the cells picked by `sel` (an index into `(N, H, V)`)."""
    pick = (*sel, k)
    coverage = json_float(cells["coverage"][pick].mean())
    calibrated = coverage is not None and (
        abs(coverage - level) <= CALIBRATION_TOLERANCE + _INTEGER_SLACK
    )
    return {
        "level": level,
        "coverage": coverage,
        "width": json_float(cells["width"][pick].mean()),
        "interval_score": json_float(cells["interval_score"][pick].mean()),
        "pinball": json_float(cells["pinball"][pick].mean()),
        "calibrated": calibrated,
    }


def _sections(summary: Callable[[_Index], Any], names: list[str], horizon: int) -> dict[str, Any]:
    """The overall / per_variable / per_horizon sections; steps keyed "1" to str(H)."""
    every = slice(None)
    return {
        "overall": summary((every, every, every)),
        "per_variable": {name: summary((every, every, v)) for v, name in enumerate(names)},
        "per_horizon": {str(h + 1): summary((every, h, every)) for h in range(horizon)},
    }


def _check_level(level: float, name: str) -> float:
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ConfigError(
            f"The '{name}' argument must be a number in (0, 1). Got {level!r} instead."
        ) from None
    if not 0 < value < 1:
        raise ConfigError(f"The '{name}' argument must be in (0, 1). Got {level!r} instead.")
    return value


def _check_levels(levels: Sequence[float] | npt.ArrayLike, name: str) -> np.ndarray:
    lv = as_finite64(levels, name)
    if lv.ndim != 1 or lv.size < 1:
        raise ConfigError(
            f"The '{name}' argument must be a non-empty 1-D sequence. Got shape {lv.shape}."
        )
    if np.any((lv <= 0) | (lv >= 1)):
        raise ConfigError(f"The '{name}' argument must be in (0, 1). Got {lv.tolist()} instead.")
    if np.any(np.diff(lv) <= 0):
        raise ConfigError(
            f"The '{name}' argument must be strictly ascending. Got {lv.tolist()} instead."
        )
    return lv


def _level_keys(levels: np.ndarray) -> list[str]:
    keys = [level_key(x) for x in levels]
    if len(set(keys)) != len(keys):
        raise ConfigError(
            f"The 'levels' argument must give distinct keys to 4 decimal places of a percent. "
            f"Got {levels.tolist()} -> {keys}."
        )
    return keys


def _check_actual(a: np.ndarray) -> None:
    if a.ndim != 3 or min(a.shape) < 1:
        raise ConfigError(
            f"The 'actual' argument must be a non-empty 3-D array (N, H, V). "
            f"Got shape {a.shape} instead."
        )


def _check_broadcast(arrays: Mapping[str, np.ndarray]) -> None:
    try:
        np.broadcast_shapes(*(arr.shape for arr in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"'{name}' {arr.shape}" for name, arr in arrays.items())
        raise ConfigError(f"The arguments must broadcast together. Got {shapes}.") from None


def _check_ordered(lower: np.ndarray, upper: np.ndarray) -> None:
    crossed = lower > upper
    if np.any(crossed):
        raise ConfigError(
            f"The 'lower' argument must be <= 'upper' everywhere. "
            f"Got {int(crossed.sum())} cell(s) with lower > upper."
        )
