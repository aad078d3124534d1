"""Datasets bundled with lstmcast (read from the installed package, nothing is downloaded)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from lstmcast.errors import DataError

# name -> (file inside this package, one-line description)
DATASETS: dict[str, tuple[str, str]] = {
    "etth1": (
        "etth1.csv.gz",
        "ETTh1: hourly transformer loads and oil temperature, 17,420 rows x 7 (CC BY-ND 4.0)",
    ),
}


def path(name: str) -> resources.abc.Traversable:
    """The packaged file of dataset `name`."""
    key = name.lower()
    if key not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; available: {', '.join(DATASETS)}")
    return resources.files(__name__) / DATASETS[key][0]


def load(name: str) -> pd.DataFrame:
    """Load a bundled dataset as a DataFrame with its original columns (time column first)."""
    with path(name).open("rb") as handle:
        return pd.read_csv(handle, compression="gzip")
