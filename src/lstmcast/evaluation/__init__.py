"""Scoring forecasts: accuracy metrics (and, later, backtests)."""

from lstmcast.evaluation.metrics import forecast_metrics, naive_one_step_mae, skill_score

__all__ = ["forecast_metrics", "naive_one_step_mae", "skill_score"]
