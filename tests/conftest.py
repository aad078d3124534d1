"""Small synthetic series shared by the tests (fast on 2 CPU cores)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
import torch
import typer.testing

torch.set_num_threads(2)

# typer's CliRunner builds the click command from the app on every invoke (0.05-0.1 s: it
# inspects each command's hundred options); no test changes the app, so it is built once,
# as a real `lstmcast` process builds it once. (Click commands are invoked many times.)
typer.testing._get_command = functools.cache(typer.testing._get_command)


def make_frame(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Three related hourly variables with a daily cycle, plus a covariate."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    daily = np.sin(2 * np.pi * t / 24)
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=rows, freq="h"),
            "load": 10 + 3 * daily + rng.normal(0, 0.3, rows),
            "temp": 20 + 5 * np.roll(daily, 3) + rng.normal(0, 0.5, rows),
            "price": 50 + np.cumsum(rng.normal(0, 1, rows)),
            "hour": (t % 24).astype(float),
        }
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def csv_file(tmp_path, frame) -> str:
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    return str(path)
