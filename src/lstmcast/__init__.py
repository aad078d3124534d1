"""lstmcast: fast, honest multivariate time-series forecasting with LSTM networks."""

from __future__ import annotations

__version__ = "0.1.0"

from lstmcast.errors import ConfigError, DataError, ModelFileError, NotFittedError
from lstmcast.forecaster import Forecaster
from lstmcast.io import load, save
from lstmcast.tuning import tune  # imports Optuna only when a search runs

__all__ = [
    "ConfigError",
    "DataError",
    "Forecaster",
    "ModelFileError",
    "NotFittedError",
    "__version__",
    "load",
    "save",
    "tune",
]
