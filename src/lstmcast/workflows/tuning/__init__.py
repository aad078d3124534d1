"""Hyperparameter search with Optuna: `tune()` and `lstmcast tune`.

`space` (the dimensions and the `[search]` table), `folds` (what one trial trains and
scores), `study` (storage, sampler, pruner, the shared trial count), `report` (table, plots),
`core` (`tune` itself). Optuna is imported only when a search runs.
"""

from lstmcast.workflows.tuning.core import TuneResult, tune
from lstmcast.workflows.tuning.folds import Fold, fold_ranges
from lstmcast.workflows.tuning.space import SearchSpace, parse_search

__all__ = ["Fold", "SearchSpace", "TuneResult", "fold_ranges", "parse_search", "tune"]
