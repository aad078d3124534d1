"""Measures traders read, on forecasts already rebuilt in price-level space.

Shapes used throughout:
    N  windows (forecast origins)
    H  horizon steps (step 1 is the first forecast step)
    V  target variables (columns)

`actual` and `predicted` are `(N, H, V)` levels and `last` is `(N, V)`, the last observed level
at each window's origin (the level just before step 1). A trader reads a forecast as a path of
returns, so the hit rate scores the sign of each step's return along the path (step h from
level h-1), not the level's distance from the origin as `metrics.directional_accuracy` does.

Every number returned is a plain Python `float`/`int`, and an undefined one is `None`, never
NaN, so results go straight into `json.dumps(..., allow_nan=False)`. Sums are float64.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lstmcast.errors import ConfigError
from lstmcast.evaluation.metrics import as_finite64, check_columns, json_float

__all__ = [
    "hit_rates",
    "market_report",
    "periods_per_year",
    "step_returns",
    "theil_u2",
    "trading_rule",
]

TRADING_NOTE = (
    "Illustration only, not investment advice: a long/short rule on the sign of each window's "
    "step-1 forecast return, held for one period and traded on the evaluated windows, with a "
    "flat proportional cost per unit of position change and no slippage, financing, borrowing "
    "or market impact. A backtest on past data does not predict future returns."
)

REPORT_NOTE = (
    "hit_rate scores the sign of each step's return (step 1 from the last observed level, step "
    "h from the level at step h-1 of the same path) over steps where the actual level moved; a "
    "forecast of no change counts as a miss. 'always_up' and 'majority' are the hit rates of "
    "always forecasting up and of always forecasting each variable's majority direction in the "
    "training rows. repeat_last forecasts no change and so has no direction (no hit rate). "
    "theil_u2 is Theil's U2 against the random walk (forecast = last observed level): U2 < 1 "
    "beats the random walk, 1 ties it. trading is an illustration, not investment advice."
)

# Return standard deviations below this count as 0: the returns are equal up to rounding, and
# a Sharpe ratio over rounding noise would be a huge meaningless number.
_FLAT_STD = 1e-12

# Periods per year of pandas frequency codes; `_ANCHORED` codes may carry a suffix ("W-SUN",
# "QE-DEC", "A-DEC"), as `pandas.infer_freq` writes them.
_PER_YEAR: dict[str, float] = {
    "B": 252.0,
    "C": 252.0,
    "D": 365.0,
    "W": 52.0,
    **dict.fromkeys(["M", "MS", "ME", "BM", "BMS", "BME"], 12.0),
    **dict.fromkeys(["Q", "QS", "QE"], 4.0),
    **dict.fromkeys(["Y", "YS", "YE", "A", "AS"], 1.0),
    "h": 8760.0,
    "H": 8760.0,
    "min": 525600.0,
    "T": 525600.0,
    "s": 31536000.0,
    "S": 31536000.0,
}
_ANCHORED = {"W", "Q", "QS", "QE", "Y", "YS", "YE", "A", "AS"}
_FREQ = re.compile(r"(\d*)([A-Za-z]+)(?:-([A-Za-z]{3}))?")


def step_returns(levels: npt.ArrayLike, last: npt.ArrayLike) -> np.ndarray:
    """Simple return of each step from the previous level of the same path, `(N, H, V)`.

    Step 1 is measured from `last` (`(N, V)`), step h from `levels[:, h-1]`. For a predicted
    path pass the predicted levels: its step-h return is then the forecast's own move. A return
    whose previous level is 0 is undefined and comes back as NaN.
    """
    x = as_finite64(levels, "levels")
    if x.ndim != 3 or min(x.shape) < 1:
        raise ConfigError(
            f"The 'levels' argument must be a non-empty 3-D array (N, H, V). "
            f"Got shape {x.shape} instead."
        )
    origin = _check_last(last, x.shape)
    return _returns(x, origin)


def up_fraction(pieces: Sequence[np.ndarray]) -> np.ndarray:
    """(V,) the share of up moves among the moves of several series' training rows `pieces`
    ((T_i, V) each; the majority direction `hit_rates` compares with), never across two."""
    changes = np.concatenate([np.diff(p, axis=0) for p in pieces])
    ups, moves = (changes > 0).sum(axis=0), (changes != 0).sum(axis=0)
    return np.divide(ups, moves, out=np.full(changes.shape[1], 0.5), where=moves > 0)


def hit_rates(
    actual: npt.ArrayLike,
    predicted: npt.ArrayLike,
    last: npt.ArrayLike,
    up_fraction: npt.ArrayLike | None = None,
    columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Hit rate of the sign of each step's forecast return, with two no-skill baselines.

    Scored over cells whose actual step return is non-zero (and defined); a zero forecast
    return is a miss. `up_fraction` (`(V,)`) is each variable's fraction of up moves in the
    TRAINING rows: the majority direction is up where it is >= 0.5. It must come from training
    data, or the "majority" baseline would peek at the answers.

    Returns `{"overall", "per_variable": {column: ...}, "per_horizon": [...] * H}` blocks of
    `{"model", "always_up", "majority", "n"}` (rates `None` when `n == 0`; "majority" `None`
    without `up_fraction`) and `"majority_direction": {column: "up" | "down"}` (or `None`).
    """
    a, p, origin = _check_paths(actual, predicted, last)
    horizon, n_vars = a.shape[1], a.shape[2]
    names = check_columns(columns, n_vars)
    maj_up = _check_up_fraction(up_fraction, n_vars)

    ra = _returns(a, origin)  # (N, H, V), NaN where undefined
    rp = _returns(p, origin)
    moved = np.isfinite(ra) & (ra != 0)
    went_up = moved & (ra > 0)
    hit = moved & (np.sign(rp) == np.sign(ra))  # sign 0 (or NaN) never matches a move
    maj_hit = None if maj_up is None else moved & ((ra > 0) == maj_up[None, None, :])

    def block(sel: tuple[slice | int, ...]) -> dict[str, float | int | None]:
        n = int(moved[sel].sum())

        def rate(cells: np.ndarray | None) -> float | None:
            return json_float(cells[sel].sum() / n) if n and cells is not None else None

        return {"model": rate(hit), "always_up": rate(went_up), "majority": rate(maj_hit), "n": n}

    every = slice(None)
    return {
        "overall": block((every, every, every)),
        "per_variable": {name: block((every, every, v)) for v, name in enumerate(names)},
        "per_horizon": [block((every, h, every)) for h in range(horizon)],
        "majority_direction": (
            None
            if maj_up is None
            else {name: "up" if up else "down" for name, up in zip(names, maj_up, strict=True)}
        ),
    }


def theil_u2(
    actual: npt.ArrayLike,
    predicted: npt.ArrayLike,
    last: npt.ArrayLike,
    columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Theil's U2 against the random walk (forecast = last level), in relative-error form.

    `U2 = sqrt(sum(((p - a) / last)^2) / sum(((a - last) / last)^2))` over the cells of each
    block; U2 < 1 beats the random walk, 1 ties it, 0 is perfect. Returns
    `{"overall": x, "per_variable": {column: x}, "per_horizon": [x] * H}` with `x` a float, or
    `None` when the random walk's error sum is 0 or a `last` level in the block is 0.
    """
    a, p, origin = _check_paths(actual, predicted, last)
    horizon, n_vars = a.shape[1], a.shape[2]
    names = check_columns(columns, n_vars)

    base = np.where(origin != 0, origin, np.nan)[:, None, :]  # (N, 1, V)
    with np.errstate(over="ignore", invalid="ignore"):
        model_sq = ((p - a) / base) ** 2  # (N, H, V)
        walk_sq = ((a - base) / base) ** 2

    def u2(sel: tuple[slice | int, ...], last_sel: tuple[slice | int, ...]) -> float | None:
        if np.any(origin[last_sel] == 0):
            return None
        denom = float(walk_sq[sel].sum())
        if denom == 0:
            return None
        return json_float(math.sqrt(float(model_sq[sel].sum()) / denom))

    every = slice(None)
    return {
        "overall": u2((every, every, every), (every, every)),
        "per_variable": {name: u2((every, every, v), (every, v)) for v, name in enumerate(names)},
        "per_horizon": [u2((every, h, every), (every, every)) for h in range(horizon)],
    }


def periods_per_year(freq: str | None) -> float | None:
    """Periods per year of a pandas-style frequency string ("B", "D", "W-SUN", "2h", ...).

    Used to annualise a per-period Sharpe ratio. Business/trading days count 252 a year, hours
    365 * 24. An integer prefix divides ("2h" is 4380). Anything unknown, or `None`, is `None`.
    """
    if not isinstance(freq, str):
        return None
    match = _FREQ.fullmatch(freq.strip())
    if match is None:
        return None
    multiple, code, anchor = match.groups()
    if code not in _PER_YEAR or (anchor is not None and code not in _ANCHORED):
        return None
    step = int(multiple) if multiple else 1
    return _PER_YEAR[code] / step if step > 0 else None


def trading_rule(
    actual: npt.ArrayLike,
    predicted: npt.ArrayLike,
    last: npt.ArrayLike,
    series: npt.ArrayLike,
    starts: npt.ArrayLike,
    cost_bps: float = 0.0,
    periods_per_year: float | None = None,
    columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Illustration (not advice): go long/short on the sign of the step-1 forecast return.

    Per series, windows sorted by start must be consecutive (starts differing by 1) so that
    their step-1 returns chain into one trading path; a series that is not is left out with a
    "reason". In period t the position is `sign(forecast step-1 return)`, the strategy earns
    `position_t * r_t - cost * |position_t - position_{t-1}|` (flat before the first period,
    `cost = cost_bps / 10000`), and buy-and-hold is long throughout (one entry cost).

    Per variable it reports "strategy" and "buy_and_hold" blocks (cumulative_return,
    mean_return, volatility, sharpe, sharpe_annualised, max_drawdown; the strategy also
    turnover and long_fraction), "n_periods" (summed over the series used) and "n_series".
    With several series each number is the mean over the series where it is defined, and
    "per_series" holds each series' own result, keyed by the series index as a string.
    """
    a, p, origin = _check_paths(actual, predicted, last)
    n_windows, n_vars = a.shape[0], a.shape[2]
    names = check_columns(columns, n_vars)
    sid = _check_index(series, "series", n_windows)
    start = _check_index(starts, "starts", n_windows)
    cost = _check_cost(cost_bps)
    per_year = _check_periods_per_year(periods_per_year)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        realised = a[:, 0, :] / origin - 1.0  # (N, V) actual step-1 returns
        forecast = p[:, 0, :] / origin - 1.0  # (N, V) forecast step-1 returns

    paths = []  # (series key, rows of that series in start order)
    for s in np.unique(sid):
        rows = np.flatnonzero(sid == s)
        paths.append((str(int(s)), rows[np.argsort(start[rows], kind="stable")]))

    per_variable = {
        name: _combine_series(
            {
                key: _one_path(start[rows], realised[rows, v], forecast[rows, v], cost, per_year)
                for key, rows in paths
            }
        )
        for v, name in enumerate(names)
    }
    return {
        "per_variable": per_variable,
        "cost_bps": float(cost_bps),
        "periods_per_year": per_year,
        "note": TRADING_NOTE,
    }


def market_report(
    actual: npt.ArrayLike,
    predicted: npt.ArrayLike,
    last: npt.ArrayLike,
    series: npt.ArrayLike,
    starts: npt.ArrayLike,
    columns: Sequence[str] | None,
    up_fraction: npt.ArrayLike | None = None,
    cost_bps: float = 0.0,
    freq: str | None = None,
) -> dict[str, Any]:
    """Hit rates, Theil's U2 and the illustrative trading rule in one JSON-safe dict.

    `freq` (a pandas frequency string) sets the periods per year used to annualise Sharpe.
    """
    return {
        "hit_rate": hit_rates(actual, predicted, last, up_fraction, columns),
        "theil_u2": theil_u2(actual, predicted, last, columns),
        "trading": trading_rule(
            actual, predicted, last, series, starts, cost_bps, periods_per_year(freq), columns
        ),
        "note": REPORT_NOTE,
    }


# --- trading helpers ---------------------------------------------------------------------


def _one_path(
    start: np.ndarray,
    realised: np.ndarray,
    forecast: np.ndarray,
    cost: float,
    per_year: float | None,
) -> dict[str, Any]:
    """The rule on one series' windows (already in start order): `(k,)` arrays in, a dict out."""
    k = int(start.size)
    gaps = np.flatnonzero(np.diff(start) != 1)
    if gaps.size:
        at = int(gaps[0])
        return _skipped(
            k,
            f"windows are not consecutive (start {int(start[at])} is followed by "
            f"{int(start[at + 1])}), so their step-1 returns do not chain into one path",
        )
    if not (np.all(np.isfinite(realised)) and np.all(np.isfinite(forecast))):
        return _skipped(k, "a step-1 return is undefined (a last observed level is 0)")

    position = np.sign(forecast)  # (k,) in {-1, 0, +1}
    change = np.abs(np.diff(position, prepend=0.0))  # flat before the first period
    strategy = position * realised - cost * change
    entry = np.zeros(k)
    entry[0] = cost
    strategy_block = _performance(strategy, per_year)
    strategy_block["turnover"] = float(change.sum())
    strategy_block["long_fraction"] = float(np.mean(position > 0))
    return {
        "strategy": strategy_block,
        "buy_and_hold": _performance(realised - entry, per_year),
        "n_periods": k,
    }


def _skipped(k: int, reason: str) -> dict[str, Any]:
    return {"strategy": None, "buy_and_hold": None, "n_periods": k, "reason": reason}


def _performance(returns: np.ndarray, per_year: float | None) -> dict[str, float | None]:
    """Summary of one path of per-period returns `(k,)`, wealth starting at 1."""
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + returns)])  # (k + 1,)
    peak = np.maximum.accumulate(wealth)
    mean = float(returns.mean())
    volatility: float | None = None
    if returns.size >= 2:
        std = float(returns.std(ddof=1))
        volatility = 0.0 if std < _FLAT_STD else std
    sharpe = mean / volatility if volatility else None
    return {
        "cumulative_return": json_float(wealth[-1] - 1.0),
        "mean_return": json_float(mean),
        "volatility": None if volatility is None else json_float(volatility),
        "sharpe": None if sharpe is None else json_float(sharpe),
        "sharpe_annualised": (
            None if sharpe is None or per_year is None else json_float(sharpe * math.sqrt(per_year))
        ),
        "max_drawdown": json_float(np.max(1.0 - wealth / peak)),
    }


def _combine_series(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One variable's result: the mean over the series that could be traded."""
    used = [r for r in results.values() if r["strategy"] is not None]
    skipped = {key: r["reason"] for key, r in results.items() if r["strategy"] is None}
    out: dict[str, Any] = {
        "strategy": _mean_blocks([r["strategy"] for r in used]),
        "buy_and_hold": _mean_blocks([r["buy_and_hold"] for r in used]),
        "n_periods": sum(int(r["n_periods"]) for r in used),
        "n_series": len(used),
    }
    if skipped:
        if len(results) == 1:
            out["reason"] = next(iter(skipped.values()))
        else:
            out["reason"] = "series left out: " + "; ".join(
                f"series {key}: {why}" for key, why in skipped.items()
            )
    if len(results) > 1:
        out["per_series"] = results
    return out


def _mean_blocks(blocks: list[dict[str, float | None]]) -> dict[str, float | None] | None:
    """Key-by-key mean of summary blocks over the blocks where the value is defined."""
    if not blocks:
        return None
    out: dict[str, float | None] = {}
    for key in blocks[0]:
        values = [x for b in blocks if (x := b[key]) is not None]
        out[key] = json_float(math.fsum(values) / len(values)) if values else None
    return out


# --- validation --------------------------------------------------------------------------


def _returns(levels: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Step returns `(N, H, V)` of `levels` from `origin` `(N, V)`; NaN where undefined."""
    previous = np.concatenate([origin[:, None, :], levels[:, :-1, :]], axis=1)  # (N, H, V)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = levels / previous - 1.0
    return np.where(previous != 0, out, np.nan)


def _check_paths(
    actual: npt.ArrayLike, predicted: npt.ArrayLike, last: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = as_finite64(actual, "actual")
    if a.ndim != 3 or min(a.shape) < 1:
        raise ConfigError(
            f"The 'actual' argument must be a non-empty 3-D array (N, H, V). "
            f"Got shape {a.shape} instead."
        )
    p = as_finite64(predicted, "predicted")
    if p.shape != a.shape:
        raise ConfigError(
            f"The 'predicted' argument must have the shape of 'actual' {a.shape}. "
            f"Got {p.shape} instead."
        )
    return a, p, _check_last(last, a.shape)


def _check_last(last: npt.ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    origin = as_finite64(last, "last")
    expected = (shape[0], shape[2])
    if origin.shape != expected:
        raise ConfigError(
            f"The 'last' argument must have shape (N, V) = {expected}. Got {origin.shape} instead."
        )
    return origin


def _check_index(x: npt.ArrayLike, name: str, n_windows: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.shape != (n_windows,):
        raise ConfigError(
            f"The '{name}' argument must have shape (N,) = ({n_windows},). Got {arr.shape} instead."
        )
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise ConfigError(
        f"The '{name}' argument must hold integers. Got dtype {arr.dtype} with values "
        f"{arr[:5].tolist()}..."
    )


def _check_up_fraction(up_fraction: npt.ArrayLike | None, n_vars: int) -> np.ndarray | None:
    """`(V,)` bool, True where the training majority direction is up."""
    if up_fraction is None:
        return None
    frac = as_finite64(up_fraction, "up_fraction")
    if frac.shape != (n_vars,):
        raise ConfigError(
            f"The 'up_fraction' argument must have shape (V,) = ({n_vars},). "
            f"Got {frac.shape} instead."
        )
    if np.any((frac < 0) | (frac > 1)):
        raise ConfigError(
            f"The 'up_fraction' argument must lie in [0, 1]. Got {frac.tolist()} instead."
        )
    return frac >= 0.5


def _check_cost(cost_bps: float) -> float:
    cost = float(cost_bps)
    if not math.isfinite(cost) or cost < 0:
        raise ConfigError(f"The 'cost_bps' argument must be a number >= 0. Got {cost_bps!r}.")
    return cost / 10_000.0


def _check_periods_per_year(value: float | None) -> float | None:
    if value is None:
        return None
    per_year = float(value)
    if not math.isfinite(per_year) or per_year <= 0:
        raise ConfigError(
            f"The 'periods_per_year' argument must be a number > 0 or None. Got {value!r}."
        )
    return per_year
