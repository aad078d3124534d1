"""Data handling: read a table, validate it into a TimeSeries, split, scale and window it."""

from lstmcast.data.load import read_table
from lstmcast.data.scale import Scaler, fit_scaler
from lstmcast.data.split import (
    Split,
    check_split,
    split_by_fraction,
    split_by_rows,
    split_by_time,
    split_windows,
    window_starts,
)
from lstmcast.data.validate import TimeSeries, prepare
from lstmcast.data.window import sliding_windows

__all__ = [
    "Scaler",
    "Split",
    "TimeSeries",
    "check_split",
    "fit_scaler",
    "prepare",
    "read_table",
    "sliding_windows",
    "split_by_fraction",
    "split_by_rows",
    "split_by_time",
    "split_windows",
    "window_starts",
]
