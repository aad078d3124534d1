"""The Diebold-Mariano test of equal forecast accuracy, with the Harvey-Leybourne-Newbold
small-sample correction (Diebold & Mariano 1995; Harvey, Leybourne & Newbold 1997).

For loss differentials d_t = loss(model error_t) - loss(reference error_t) over n forecast
origins in time order, DM = mean(d) / sqrt(V / n), where V is the long-run variance of d: the
autocovariances up to lag h - 1, since h-step forecasts from consecutive origins overlap and
their errors are correlated up to h - 1 lags (the rectangular kernel of the original test; a
negative estimate falls back to the lag-0 variance). HLN multiply by sqrt((n + 1 - 2h +
h(h - 1) / n) / n) and read the statistic against Student's t with n - 1 degrees of freedom.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lstmcast.errors import ConfigError

LEVEL = 0.05


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(statistic: float, df: float) -> float:
    """P(|T| >= |statistic|) for Student's t with `df` degrees of freedom."""
    if not math.isfinite(statistic):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + statistic * statistic))


def diebold_mariano(
    model_errors: np.ndarray,
    reference_errors: np.ndarray,
    horizon: int,
    loss: str = "squared",
    times: np.ndarray | None = None,
) -> dict[str, Any]:
    """DM test of `model_errors` against `reference_errors` (n origins in time order, any
    trailing shape: each origin's loss is the mean over steps and variables), for forecasts
    `horizon` origins apart at most in overlap (lags up to horizon - 1). With `times` (n,),
    origins of one time (many series forecast from one date) count as one: their mean loss
    differential, in the order of the times.

    Returns the statistic (HLN-corrected; < 0: the model's loss is lower), the two-sided
    p-value, the mean loss differential, n, and `better` / `worse` / `not distinguishable` at
    the 5% level."""
    if loss not in ("squared", "absolute"):
        raise ConfigError(f"The 'loss' parameter must be squared or absolute. Got {loss!r}.")
    a = np.asarray(model_errors, dtype=np.float64)
    b = np.asarray(reference_errors, dtype=np.float64)
    if a.shape != b.shape or a.ndim == 0:
        raise ConfigError(f"error arrays must match in shape; got {a.shape} and {b.shape}")
    f = np.square if loss == "squared" else np.abs
    d = (f(a) - f(b)).reshape(len(a), -1).mean(axis=1)  # (n,) loss differential per origin
    if times is not None:
        _, group = np.unique(np.asarray(times), return_inverse=True)
        d = np.bincount(group, weights=d) / np.bincount(group)  # (distinct times,)
    n, h = len(d), max(1, int(horizon))
    result: dict[str, Any] = {
        "loss": loss,
        "n": n,
        "lags": h - 1,
        "mean_differential": None,
        "statistic": None,
        "p_value": None,
        "verdict": "not distinguishable",
    }
    if n < 3 or n <= 2 * h:
        result["verdict"] = f"too few origins ({n}) for a test at horizon {h}"
        return result
    mean = float(d.mean())
    centred = d - mean
    gammas = [float(centred[k:] @ centred[: n - k]) / n for k in range(h)]
    variance = gammas[0] + 2.0 * sum(gammas[1:])
    if variance <= 0:
        variance = gammas[0]
    result["mean_differential"] = mean
    if variance <= 0:  # identical losses at every origin
        result["statistic"], result["p_value"] = 0.0, 1.0
        return result
    dm = mean / math.sqrt(variance / n)
    hln = dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    p = t_two_sided_p(hln, n - 1)
    result["statistic"], result["p_value"] = hln, p
    if p < LEVEL:
        result["verdict"] = "better" if mean < 0 else "worse"
    return result
