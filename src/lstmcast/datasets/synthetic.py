"""Seeded synthetic panels in long format, for tests and benchmarks: many series of unequal
lengths and start dates, with a known-future promotion flag that lifts the target, a static
category and a static size that scale it, and a daily cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmcast.checks import check_int

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
