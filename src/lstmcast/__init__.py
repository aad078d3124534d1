"""lstmcast: fast, honest multivariate time-series forecasting with LSTM networks."""

from __future__ import annotations

from lstmcast.errors import ConfigError, DataError, ModelFileError, NotFittedError
from lstmcast.version import __version__
from lstmcast.workflows.backtesting import run_backtest as backtest
from lstmcast.workflows.forecaster import Forecaster, load, save
from lstmcast.workflows.tuning import tune  # imports Optuna only when a search runs

__all__ = [
    "ConfigError",
    "DataError",
    "Forecaster",
    "ModelFileError",
    "NotFittedError",
    "__version__",
    "backtest",
    "load",
    "save",
    "tune",
]
