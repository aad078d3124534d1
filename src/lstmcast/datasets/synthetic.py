"""Seeded synthetic panels in long format, for tests and benchmarks: many series of unequal
lengths and start dates, with a known-future promotion flag that lifts the target, a static
category and a static size that scale it, and a daily cycle; seeded price panels; and wide
single-table series with known structure (trend + season, two seasons, a regime shift, a
random walk, a stationary AR(1))."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmcast.checks import check_int
from lstmcast.errors import ConfigError

REGIONS = ("north", "south", "east", "west")


def synthetic_panel(
    n_series: int = 20,
    n_rows: int = 300,
    *,
    seed: int = 0,
    freq: str = "h",
    unequal: bool = True,
    promo_effect: float = 2.0,
) -> pd.DataFrame:
    """A long table: `id`, `time`, `sales` (the target), `promo` (0/1, known in advance: it
    raises sales by `promo_effect` standard units while on), `region` (static text), `size`
    (static number: each series' level). With `unequal`, series lengths vary between half and
    all of `n_rows` and their starts are staggered."""
    n_series, n_rows = check_int("n_series", n_series), check_int("n_rows", n_rows, minimum=8)
    rng = np.random.default_rng(seed)
    frames = []
    origin = pd.Timestamp("2024-01-01")
    for i in range(n_series):
        length = int(rng.integers(n_rows // 2, n_rows + 1)) if unequal else n_rows
        start = origin + pd.Timedelta(
            int(rng.integers(0, n_rows // 4 + 1)) if unequal else 0,
            unit="h" if freq == "h" else "D",
        )
        time = pd.date_range(start, periods=length, freq=freq)
        t = np.arange(length)
        size = float(rng.uniform(5, 50))
        promo = (rng.random(length) < 0.15).astype(np.float64)
        noise = np.zeros(length)
        for k in range(1, length):  # AR(1) noise: something to learn beyond the cycle
            noise[k] = 0.7 * noise[k - 1] + rng.normal(0, 0.3)
        sales = size * (1 + 0.1 * (np.sin(2 * np.pi * t / 24) + noise + promo_effect * promo))
        frames.append(
            pd.DataFrame(
                {
                    "id": f"s{i:04d}",
                    "time": time,
                    "sales": sales,
                    "promo": promo,
                    "region": REGIONS[i % len(REGIONS)],
                    "size": round(size, 3),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def synthetic_prices(
    n_tickers: int = 5,
    n_rows: int = 1500,
    *,
    seed: int = 0,
    momentum: float = 0.15,
    volatility: float = 0.01,
) -> pd.DataFrame:
    """A long table of daily closes on business days: `ticker`, `date`, `close`. Each price is
    a geometric random walk whose log-returns carry a predictable part: an AR(1) with
    coefficient `momentum` (0 = a pure random walk: nothing to find) plus a weekday effect,
    on top of a market factor every ticker shares and its own noise."""
    n_tickers = check_int("n_tickers", n_tickers)
    n_rows = check_int("n_rows", n_rows, minimum=8)
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-05", periods=n_rows)
    weekday = 0.1 * volatility * np.cos(2 * np.pi * dates.dayofweek.to_numpy() / 5)
    market = rng.normal(0, 0.6 * volatility, n_rows)
    frames = []
    for i in range(n_tickers):
        shock = market + rng.normal(0, 0.8 * volatility, n_rows) + weekday
        returns = np.empty(n_rows)
        returns[0] = shock[0]
        for t in range(1, n_rows):
            returns[t] = momentum * returns[t - 1] + shock[t]
        start = float(rng.uniform(20, 200))
        frames.append(
            pd.DataFrame(
                {
                    "ticker": f"T{i:02d}",
                    "date": dates,
                    "close": start * np.exp(np.cumsum(returns + 0.0002)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Wide single-table series with known structure, for the broad accuracy table
# (benchmarks/broad_accuracy.py). Each returns a DataFrame with a `date` column and one column
# per name in `targets`; each target draws its own phase, level and noise from the same seeded
# generator, so the columns are related but not copies.


def _dates(n_rows: int, freq: str) -> pd.DatetimeIndex:
    return pd.date_range("2015-01-01", periods=n_rows, freq=freq)


def _frame(dates: pd.DatetimeIndex, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({"date": dates, **columns})


def _names(targets: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = tuple(targets)
    if not names or len(set(names)) != len(names) or "date" in names:
        raise ConfigError(f"targets must be distinct names other than 'date'; got {names!r}.")
    return names


def synthetic_seasonal(
    n_rows: int = 500,
    *,
    seed: int = 0,
    freq: str = "D",
    period: float = 7,
    trend: float = 0.005,
    amplitude: float = 1.0,
    noise: float = 0.3,
    targets: tuple[str, ...] = ("y",),
) -> pd.DataFrame:
    """Trend plus one seasonality plus white noise: for each target,
    `level + trend * t + amplitude * sin(2 pi t / period + phase) + N(0, noise)`, with `t` the
    row number and a random level and phase per target. `trend` is per row, in the units of
    `amplitude`; `noise` sets the difficulty (0.1 low, 1.0 about the seasonal amplitude).
    The best forecast is the trend plus the cycle; seasonal_naive at `period` gets the cycle
    but pays twice the noise variance."""
    n_rows = check_int("n_rows", n_rows, minimum=8)
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows, dtype=np.float64)
    columns = {}
    for name in _names(targets):
        level, phase = float(rng.uniform(-1, 1)), float(rng.uniform(0, 2 * np.pi))
        cycle = amplitude * np.sin(2 * np.pi * t / period + phase)
        columns[name] = level + trend * t + cycle + rng.normal(0, noise, n_rows)
    return _frame(_dates(n_rows, freq), columns)


def synthetic_two_seasons(
    n_rows: int = 730,
    *,
    seed: int = 0,
    freq: str = "D",
    periods: tuple[float, float] = (7, 365.25),
    amplitudes: tuple[float, float] = (1.0, 2.0),
    noise: float = 0.3,
    targets: tuple[str, ...] = ("y",),
) -> pd.DataFrame:
    """Two seasonalities plus white noise (no trend): by default a weekly cycle of amplitude 1
    and a yearly cycle of amplitude 2 on daily rows, as in daily retail or energy data. A
    lookback shorter than the long period sees the long cycle only as a slowly moving level."""
    n_rows = check_int("n_rows", n_rows, minimum=8)
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows, dtype=np.float64)
    columns = {}
    for name in _names(targets):
        value = rng.normal(0, noise, n_rows) + float(rng.uniform(-1, 1))
        for period, amplitude in zip(periods, amplitudes, strict=True):
            value += amplitude * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        columns[name] = value
    return _frame(_dates(n_rows, freq), columns)


def synthetic_regime_shift(
    n_rows: int = 400,
    *,
    seed: int = 0,
    freq: str = "W",
    at: float = 0.5,
    level_change: float = 3.0,
    slope_before: float = 0.0,
    slope_after: float = 0.02,
    ar: float = 0.5,
    noise: float = 0.3,
    targets: tuple[str, ...] = ("y",),
) -> pd.DataFrame:
    """A level and slope change at row `int(at * n_rows)` on AR(1) noise (coefficient `ar`,
    innovations N(0, noise)): flat (`slope_before` per row) until the break, then up by
    `level_change` and rising at `slope_after` per row. With the default split (70/10/20) and
    `at=0.5` the break is inside the training rows, so validation and test lie after it and
    above the training mean: the mean baseline is poor, models must follow the recent level."""
    n_rows = check_int("n_rows", n_rows, minimum=8)
    if not 0 < at < 1:
        raise ConfigError(f"The 'at' parameter must be in (0, 1). Got {at!r} instead.")
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows, dtype=np.float64)
    brk = int(at * n_rows)
    after = t >= brk
    base = slope_before * t + after * (level_change + slope_after * (t - brk))
    columns = {}
    for name in _names(targets):
        shock = rng.normal(0, noise, n_rows)
        resid = np.empty(n_rows)
        resid[0] = shock[0]
        for k in range(1, n_rows):
            resid[k] = ar * resid[k - 1] + shock[k]
        columns[name] = float(rng.uniform(-1, 1)) + base + resid
    return _frame(_dates(n_rows, freq), columns)


def synthetic_random_walk(
    n_rows: int = 500,
    *,
    seed: int = 0,
    freq: str = "D",
    step: float = 1.0,
    drift: float = 0.0,
    targets: tuple[str, ...] = ("y",),
) -> pd.DataFrame:
    """Independent Gaussian random walks (steps N(drift, step)): the last value is the best
    forecast of every future step, so nothing should beat repeat_last beyond noise."""
    n_rows = check_int("n_rows", n_rows, minimum=8)
    rng = np.random.default_rng(seed)
    columns = {
        name: np.cumsum(rng.normal(drift, step, n_rows)) + float(rng.uniform(-5, 5))
        for name in _names(targets)
    }
    return _frame(_dates(n_rows, freq), columns)


def synthetic_ar1(
    n_rows: int = 300,
    *,
    seed: int = 0,
    freq: str = "MS",
    phi: float = 0.3,
    mean: float = 10.0,
    noise: float = 1.0,
    targets: tuple[str, ...] = ("y",),
) -> pd.DataFrame:
    """A stationary AR(1) around `mean`: `y[t] - mean = phi * (y[t-1] - mean) + N(0, noise)`,
    started from its stationary distribution. The best h-step forecast is
    `mean + phi**h * (y[t] - mean)`. At one step the mean baseline's MSE is the variance,
    repeat_last's is 2 (1 - phi) times it: with `phi` below 0.5 the mean beats repeat_last."""
    n_rows = check_int("n_rows", n_rows, minimum=8)
    if not -1 < phi < 1:
        raise ConfigError(
            f"The 'phi' parameter must be in (-1, 1) (stationary). Got {phi!r} instead."
        )
    rng = np.random.default_rng(seed)
    columns = {}
    for name in _names(targets):
        value = np.empty(n_rows)
        value[0] = rng.normal(0, noise / np.sqrt(1 - phi**2))
        shock = rng.normal(0, noise, n_rows)
        for k in range(1, n_rows):
            value[k] = phi * value[k - 1] + shock[k]
        columns[name] = mean + value
    return _frame(_dates(n_rows, freq), columns)
