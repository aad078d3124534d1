"""The simple baselines every report puts beside the model, and the season they use.

repeat_last (the last value at every step) is always there; so is `mean`, each series' mean
over its training rows, the flat line an LSTM that learned nothing draws; `seasonal_naive`
(the value one season before each step) joins them when a season is given (`--period`) or
found. A season is found from the data's frequency (24 for hourly rows, 7 for daily, 5 for
trading days, 52 for weekly, 12 for monthly, 4 for quarterly) when the lookback holds one and
the first differences of the training rows correlate at that lag (mean over targets and
series at least `MIN_SEASONAL_ACF`): differences, so that a trend alone does not pass. The
verdict compares the model with the best of these baselines on the scaled MSE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_SEASONAL_ACF = 0.2
BASELINES = ("repeat_last", "mean", "seasonal_naive")


@dataclass(frozen=True, eq=False)
class BaselineState:
    """What the baselines learn on the training rows: each series' mean (S, V) in original
    units of the reported space (the levels under a target transform), and the season."""

    train_mean: np.ndarray
    season: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"train_mean": self.train_mean.tolist(), "season": self.season}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineState:
        return cls(np.asarray(data["train_mean"], dtype=np.float64), data["season"])


# A frequency's usual season: rows per season at one unit of the offset, the season's name,
# and the rows' own name (one unit, then n units).
_SEASONS: dict[str, tuple[int, str, str, str]] = {
    "min": (1440, "day", "minute", "minute"),
    "h": (24, "day", "hourly", "hour"),
    "D": (7, "week", "daily", "day"),
    "B": (5, "week", "business-day", "business-day"),
    "C": (5, "week", "business-day", "business-day"),
    "W": (52, "year", "weekly", "week"),
    "M": (12, "year", "monthly", "month"),
    "Q": (4, "year", "quarterly", "quarter"),
}


def _season(freq: str | None) -> tuple[int, str, str] | None:
    """(rows per season, the season, the rows) at `freq`, e.g. (24, "day", "hourly") or
    (96, "day", "15-minute"); None where no season is known."""
    if not freq:
        return None
    import pandas as pd

    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError):
        return None
    name, n = offset.name.split("-")[0], max(int(offset.n), 1)
    if name.startswith("W"):
        name = "W"
    elif name in ("MS", "ME", "M", "BMS", "BME"):
        name = "M"
    elif name.startswith(("Q", "BQ")):
        name = "Q"
    if name not in _SEASONS or _SEASONS[name][0] % n:
        return None
    per_unit, season, one, unit = _SEASONS[name]
    rows = per_unit // n
    return (rows, season, one if n == 1 else f"{n}-{unit}") if rows >= 2 else None


def frequency_season(freq: str | None) -> int | None:
    """The usual season of rows at `freq`, in rows (None: none known)."""
    found = _season(freq)
    return found[0] if found else None


def season_words(freq: str | None, count: int) -> str | None:
    """`count` seasons at `freq` in words, e.g. "4 weeks of 7 daily rows" (None: no season)."""
    found = _season(freq)
    if found is None:
        return None
    rows, season, kind = found
    return f"{count} {season}{'' if count == 1 else 's'} of {rows} {kind} rows"


def fit_baselines(
    values: np.ndarray,
    pieces: Sequence[tuple[int, slice]],
    n_series: int,
    freq: str | None,
    lookback: int,
    period: int | None,
) -> BaselineState:
    """Learn the baselines on the training rows: `pieces` are (series, its rows of `values`)
    pairs; each series' mean over its rows (0 for a series without one: it is not scored) and
    the season those rows show (`detect_season`)."""
    mean = np.zeros((n_series, values.shape[1]))
    rows = []
    for i, piece in pieces:
        rows.append(values[piece])
        mean[i] = rows[-1].mean(axis=0)
    return BaselineState(mean, detect_season(freq, rows, lookback, period))


def detect_season(
    freq: str | None, pieces: Sequence[np.ndarray], lookback: int, given: int | None
) -> int | None:
    """The season seasonal_naive uses: `given` (--period) when set, else the frequency's when
    the lookback holds it and the training rows' differences (`pieces`: (rows, V) per series)
    correlate at that lag."""
    if given is not None:
        return given if given <= lookback else None
    season = frequency_season(freq)
    if season is None or season > lookback:
        return None
    scores = []
    for rows in pieces:
        change = np.diff(np.asarray(rows, dtype=np.float64), axis=0)
        if len(change) < 2 * season + 2:
            continue
        a, b = change[season:], change[:-season]
        a, b = a - a.mean(axis=0), b - b.mean(axis=0)
        denominator = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
        correlation = np.divide(
            (a * b).sum(axis=0), denominator, out=np.zeros_like(denominator), where=denominator > 0
        )
        scores.extend(correlation.tolist())
    if not scores or float(np.mean(scores)) < MIN_SEASONAL_ACF:
        return None
    return season


def baseline_forecasts(
    state: BaselineState,
    values: np.ndarray,
    series: np.ndarray,
    starts: np.ndarray,
    lookback: int,
    horizon: int,
) -> dict[str, np.ndarray]:
    """`mean` and (with a season) `seasonal_naive` forecasts (N, H, V) in original units, for
    windows starting at `starts` (rows of `values` (T, V), original units) of `series` (N,)."""
    n, n_targets = len(starts), values.shape[1]
    out = {"mean": np.broadcast_to(state.train_mean[series][:, None, :], (n, horizon, n_targets))}
    season = state.season
    if season is not None and season <= lookback:
        steps = starts[:, None] + lookback - season + np.arange(horizon) % season  # (N, H)
        out["seasonal_naive"] = values[steps].astype(np.float64)
    return out
