"""Property-based intake: malformed tables, written as CSV bytes, either become series whose
values are all finite and whose times are unique and increasing per series, or fail with a
one-line DataError. Any other exception, a NaN or a multi-line message fails."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from strategies import tables

from lstmcast.data.load import read_table_digest
from lstmcast.data.panel import Panel, prepare_panel
from lstmcast.data.validate import TimeSeries, prepare
from lstmcast.errors import DataError

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_series(result: TimeSeries) -> None:
    assert np.isfinite(result.values).all()
    if result.time is not None:
        assert result.time.is_unique and result.time.is_monotonic_increasing


def check_panel(result: Panel) -> None:
    assert np.isfinite(result.values).all()
    if result.time is not None:
        for i in range(result.n_series):
            stamps = result.time[result.rows(i)]
            assert stamps.is_unique and stamps.is_monotonic_increasing


def outcome(call: Callable[[], Any], check: Callable[[Any], None]) -> Any:
    """The checked result, or None for a one-line DataError naming the data; anything else
    fails the test."""
    try:
        result = call()
    except DataError as err:
        message = str(err)
        assert len(message.splitlines()) == 1, repr(message)
        assert message.startswith("fuzz.csv: "), repr(message)
        event(f"refused: {message[10:40]}")
        return None
    check(result)
    event("read")
    return result


def _read(content: bytes, suffix: str) -> pd.DataFrame | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(content)
        try:
            return read_table_digest(path)[0]
        except DataError as err:
            message = str(err)
            assert len(message.splitlines()) == 1, repr(message)
            assert message.startswith(f"data file '{path}'"), repr(message)
            event(f"file refused: {message[len(str(path)) + 13 :][:30]}")
            return None


@FUZZ
@given(
    table=tables(),
    fill=st.sampled_from(["error", "ffill", "interpolate"]),
    duplicates=st.sampled_from(["error", "first", "last", "mean"]),
)
def test_wide_tables_are_read_honestly(table: tuple[bytes, str], fill: str, duplicates: str):
    frame = _read(*table)
    if frame is None:
        return
    series = outcome(
        lambda: prepare(frame, fill=fill, source="fuzz.csv", duplicates=duplicates),
        check_series,
    )
    panel = outcome(
        lambda: prepare_panel(
            frame, id_col=None, fill=fill, source="fuzz.csv", duplicates=duplicates
        ),
        check_panel,
    )
    assert (series is None) == (panel is None)  # a wide table is the panel of one series
    if series is not None:
        np.testing.assert_array_equal(series.values, panel.values)


@FUZZ
@given(
    table=tables(),
    fill=st.sampled_from(["error", "ffill", "interpolate"]),
    duplicates=st.sampled_from(["error", "first", "last", "mean"]),
    pick=st.integers(0, 4),
)
def test_long_tables_are_read_honestly(
    table: tuple[bytes, str], fill: str, duplicates: str, pick: int
):
    frame = _read(*table)
    if frame is None:
        return
    id_col = str(frame.columns[pick % frame.shape[1]])
    outcome(
        lambda: prepare_panel(
            frame, id_col=id_col, fill=fill, source="fuzz.csv", duplicates=duplicates
        ),
        check_panel,
    )
