"""Target transforms: every transform round-trips (forward, then rebuilt from the last level,
over several steps), never across a series, and bad values are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstmcast.data.panel import prepare_panel
from lstmcast.data.transform import (
    KINDS,
    forward,
    parse_transform,
    rebuild,
    resolve,
    transform_panel,
)
from lstmcast.errors import ConfigError, DataError


def prices(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.02, size=(n, 2)), axis=0))


@pytest.mark.parametrize("kind", KINDS)
def test_every_transform_round_trips_over_several_steps(kind):
    x = prices()
    bounds = np.array([0, len(x)])
    y = forward(x, (kind, kind), bounds)
    origin, horizon = 10, 7  # rebuild rows 11..17 from the level at row 10
    path = y[origin + 1 : origin + 1 + horizon][None]  # (1, H, V)
    levels = rebuild(path, x[origin][None], (kind, kind))
    np.testing.assert_allclose(levels[0], x[origin + 1 : origin + 1 + horizon], rtol=1e-12)


def test_mixed_transforms_per_column():
    x = prices()
    kinds = ("log-returns", "diff")
    y = forward(x, kinds, np.array([0, len(x)]))
    np.testing.assert_allclose(y[1:, 0], np.diff(np.log(x[:, 0])))
    np.testing.assert_allclose(y[1:, 1], np.diff(x[:, 1]))
    assert np.isnan(y[0]).all()  # no previous level


def test_returns_compound_not_add():
    # +10% then -10% is 0.99 of the start, not 1.0
    got = rebuild(np.array([[[0.1], [-0.1]]]), np.array([[100.0]]), ("returns",))
    np.testing.assert_allclose(got[0, :, 0], [110.0, 99.0])


def long_table(a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    time = pd.bdate_range("2024-01-01", periods=len(a))
    return pd.concat(
        [
            pd.DataFrame({"ticker": "A", "date": time, "close": a}),
            pd.DataFrame({"ticker": "B", "date": time[: len(b)], "close": b}),
        ]
    )


def test_a_panel_is_transformed_within_each_series_only():
    a, b = prices(30, 1)[:, 0], prices(20, 2)[:, 0] * 50
    panel = prepare_panel(long_table(a, b), id_col="ticker", time_col="date", targets=["close"])
    out = transform_panel(panel, ("log-returns",), "t")
    assert list(out.lengths()) == [29, 19]  # the first row of each series has no return
    # the levels are held as float32, so returns agree to float32's resolution
    np.testing.assert_allclose(out.values[:29, 0], np.diff(np.log(a)), atol=1e-6)
    # B's first return is B's own, never log(b[1]) - log(a[-1])
    np.testing.assert_allclose(out.values[29:, 0], np.diff(np.log(b)), atol=1e-6)
    np.testing.assert_allclose(out.levels[29:, 0], b[1:], rtol=1e-6)
    assert out.time[29] == panel.time[31]


def test_log_on_a_zero_names_the_column_series_and_time():
    a = prices(30, 1)[:, 0]
    b = prices(20, 2)[:, 0]
    b[5] = 0.0
    panel = prepare_panel(long_table(a, b), id_col="ticker", time_col="date", targets=["close"])
    with pytest.raises(DataError, match=r"column 'close' of series 'B'.*0 at 2024-01-08.*> 0"):
        transform_panel(panel, ("log",), "t")
    with pytest.raises(DataError, match="no zero"):
        transform_panel(panel, ("returns",), "t")
    b[5] = -1.0
    panel = prepare_panel(long_table(a, b), id_col="ticker", time_col="date", targets=["close"])
    with pytest.raises(DataError, match="log-returns needs values > 0"):
        transform_panel(panel, ("log-returns",), "t")
    transform_panel(panel, ("diff",), "t")  # a difference takes any value


def test_the_option_is_parsed_and_checked():
    assert parse_transform(None) == "none"
    assert parse_transform(" log-returns ") == "log-returns"
    assert parse_transform("Close = log-returns, Volume=log") == "Close=log-returns,Volume=log"
    assert parse_transform({"Close": "diff"}) == "Close=diff"
    with pytest.raises(ConfigError, match="unknown transform 'logret' of column 'Close'"):
        parse_transform("Close=logret")
    with pytest.raises(ConfigError, match="names column 'Close' twice"):
        parse_transform("Close=log,Close=diff")
    with pytest.raises(ConfigError, match="not COLUMN=KIND"):
        parse_transform("Close=log,diff")
    assert resolve("Close=log", ["Close", "Volume"]) == ("log", "none")
    assert resolve("diff", ["a", "b"]) == ("diff", "diff")
    with pytest.raises(ConfigError, match="'Open', which is not a target"):
        resolve("Open=log", ["Close"])
