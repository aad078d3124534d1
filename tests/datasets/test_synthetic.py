"""The seeded synthetic generators: repeatable, and carrying the structure they promise."""

from __future__ import annotations

import numpy as np
import pandas as pd


def test_synthetic_prices_carry_the_momentum_they_are_given():
    from lstmcast.datasets.synthetic import synthetic_prices

    def lag1(frame):
        r = np.diff(np.log(frame[frame.ticker == "T00"].close.to_numpy()))
        return float(np.corrcoef(r[1:], r[:-1])[0, 1])

    a = synthetic_prices(2, 3000, seed=3, momentum=0.3)
    pd.testing.assert_frame_equal(a, synthetic_prices(2, 3000, seed=3, momentum=0.3))
    assert (a.close > 0).all() and a.date.dt.dayofweek.max() == 4  # business days
    assert 0.22 < lag1(a) < 0.38
    assert abs(lag1(synthetic_prices(2, 3000, seed=3, momentum=0.0))) < 0.08
