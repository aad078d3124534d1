"""Target transforms: a model trains on returns (or differences, or logs) of a price and its
forecasts are rebuilt into levels from the last observed level.

A price level is non-stationary: trained on levels, an LSTM mostly learns to repeat the last
price. Returns are closer to stationary. `transform_panel` replaces each target column by its
transform (the differencing ones drop the first row of each series, which has no previous
level) and keeps the levels beside it (`Panel.levels`); `rebuild` maps a forecast path back,
compounding over the horizon.

    none         y_t = x_t
    diff         y_t = x_t - x_{t-1}              x_h = x_0 + y_1 + ... + y_h
    log          y_t = log x_t                    x_h = exp(y_h)
    returns      y_t = x_t / x_{t-1} - 1          x_h = x_0 (1 + y_1) ... (1 + y_h)
    log-returns  y_t = log x_t - log x_{t-1}      x_h = x_0 exp(y_1 + ... + y_h)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmcast import choices
from lstmcast.data.calendar import dates_only, time_text
from lstmcast.data.panel import Panel, PanelScaler
from lstmcast.errors import ConfigError, DataError

KINDS = choices.values(choices.Transform)
DIFFERENCING = ("diff", "returns", "log-returns")  # y_t needs x_{t-1}; rebuilt cumulatively
_POSITIVE = ("log", "log-returns")  # need x > 0


def parse_transform(value: Any) -> str:
    """The `transform` option, normalised: "none", one kind for every target ("log-returns"),
    or per column ("Close=log-returns,Volume=log"); ConfigError names what is wrong."""
    if value is None:
        return "none"
    if isinstance(value, dict):
        value = ",".join(f"{k}={v}" for k, v in value.items())
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"The 'transform' option takes a kind ({', '.join(KINDS)}) or COLUMN=KIND pairs "
            f"such as Close=log-returns,Volume=log. Got {value!r}."
        )
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if len(parts) == 1 and "=" not in parts[0]:
        _check_kind(parts[0], None)
        return parts[0]
    seen: set[str] = set()
    for part in parts:
        column, sep, kind = (s.strip() for s in part.partition("="))
        if not sep or not column:
            raise ConfigError(
                f"The 'transform' option: '{part}' is not COLUMN=KIND (e.g. Close=log-returns)."
            )
        if column in seen:
            raise ConfigError(f"The 'transform' option names column '{column}' twice.")
        seen.add(column)
        _check_kind(kind, column)
    return ",".join("=".join(s.strip() for s in p.partition("=")[::2]) for p in parts)


def _check_kind(kind: str, column: str | None) -> None:
    if kind not in KINDS:
        where = f" of column '{column}'" if column else ""
        raise ConfigError(
            f"The 'transform' option: unknown transform '{kind}'{where}; allowed: "
            f"{', '.join(KINDS)}."
        )


def kinds_named(spec: str) -> set[str]:
    """The transforms a normalised `spec` uses (whichever columns they apply to)."""
    return {part.rpartition("=")[2] for part in spec.split(",")}


def resolve(spec: str, targets: Sequence[str]) -> tuple[str, ...]:
    """The transform of each target under the normalised `spec` (unnamed targets: none)."""
    if "=" not in spec:
        return tuple(spec for _ in targets)
    pairs = dict(p.split("=", 1) for p in spec.split(","))
    unknown = [c for c in pairs if c not in targets]
    if unknown:
        raise ConfigError(
            f"The 'transform' option names column '{unknown[0]}', which is not a target; the "
            f"targets are {', '.join(targets)}."
        )
    return tuple(pairs.get(t, "none") for t in targets)


def is_identity(kinds: Sequence[str]) -> bool:
    return all(k == "none" for k in kinds)


def cumulative(kinds: Sequence[str]) -> bool:
    """Whether a step's level depends on the earlier steps (a differencing transform)."""
    return any(k in DIFFERENCING for k in kinds)


def forward(levels: np.ndarray, kinds: Sequence[str], bounds: np.ndarray) -> np.ndarray:
    """(T, V) float64 transformed values of (T, V) `levels`; a differencing transform leaves
    the first row of each series NaN (it has no previous level). Never across a series."""
    x = levels.astype(np.float64)
    out = np.empty_like(x)
    prev = np.full_like(x, np.nan)
    prev[1:] = x[:-1]
    prev[bounds[:-1][np.diff(bounds) > 0]] = np.nan  # no previous level across series
    with np.errstate(divide="ignore", invalid="ignore"):
        for v, kind in enumerate(kinds):
            a, b = x[:, v], prev[:, v]
            if kind == "none":
                out[:, v] = a
            elif kind == "diff":
                out[:, v] = a - b
            elif kind == "log":
                out[:, v] = np.log(a)
            elif kind == "returns":
                out[:, v] = a / b - 1.0
            else:  # log-returns
                out[:, v] = np.log(a) - np.log(b)
    return out


def rebuild(y: np.ndarray, last: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
    """(N, H, V) levels of (N, H, V) transformed forecasts `y`, each path starting from its
    (N, V) last observed level `last` (multi-step: compounded)."""
    y = np.asarray(y, dtype=np.float64)
    x0 = np.asarray(last, dtype=np.float64)[:, None, :]
    out = np.empty_like(y)
    with np.errstate(over="ignore", invalid="ignore"):
        for v, kind in enumerate(kinds):
            yv, x0v = y[:, :, v], x0[:, :, v]
            if kind == "none":
                out[:, :, v] = yv
            elif kind == "diff":
                out[:, :, v] = x0v + np.cumsum(yv, axis=1)
            elif kind == "log":
                out[:, :, v] = np.exp(yv)
            elif kind == "returns":
                out[:, :, v] = x0v * np.cumprod(1.0 + yv, axis=1)
            else:  # log-returns
                out[:, :, v] = x0v * np.exp(np.cumsum(yv, axis=1))
    return out


def check_levels(panel: Panel, kinds: Sequence[str], source: str) -> None:
    """DataError naming the column, series and timestamp (or row) of the first value the
    transform cannot take: log and log-returns need values > 0, returns no zero."""
    for v, kind in enumerate(kinds):
        if kind in _POSITIVE:
            bad, need = panel.values[:, v] <= 0, "values > 0"
        elif kind == "returns":
            bad, need = panel.values[:, v] == 0, "no zero (it divides by the previous value)"
        else:
            continue
        rows = np.flatnonzero(bad)
        if len(rows):
            row = int(rows[0])
            series = int(np.searchsorted(panel.bounds, row, side="right") - 1)
            who = f" of series '{panel.ids[series]}'" if panel.id_col else ""
            when = (
                f"at {time_text(panel.time[row], dates_only(panel.time))}"
                if panel.time is not None
                else f"in row {row - int(panel.bounds[series]) + 1}"
            )
            raise DataError(
                f"{source}: column '{panel.targets[v]}'{who} has the value "
                f"{float(panel.values[row, v]):g} {when}; --transform {kind} needs {need}"
            )


def transform_panel(panel: Panel, kinds: Sequence[str], source: str) -> Panel:
    """`panel` with its targets transformed and their levels kept in `Panel.levels`; with a
    differencing transform the first row of each series is dropped (a series left empty is
    kept with no rows: the split then skips it)."""
    check_levels(panel, kinds, source)
    V = panel.n_targets
    levels = panel.values[:, :V].astype(np.float64)
    transformed = forward(levels, kinds, panel.bounds)
    keep = np.ones(len(panel), dtype=bool)
    if cumulative(kinds):
        keep[panel.bounds[:-1][np.diff(panel.bounds) > 0]] = False
    values = panel.values.copy()
    values[:, :V] = transformed.astype(np.float32)
    lengths = np.diff(panel.bounds)
    if cumulative(kinds):
        lengths = np.maximum(lengths - 1, 0)  # each series' first row dropped
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return dataclasses.replace(
        panel,
        values=values[keep],
        bounds=bounds,
        time=panel.time[keep] if panel.time is not None else None,
        levels=levels[keep],
    )


@dataclass(frozen=True)
class LevelState:
    """What a run with a target transform learns about the levels: each target's transform,
    a scaler of the levels per series (on its train rows: level metrics on the same footing
    as an untransformed run's) and the one-step naive MAE of the train levels (scaled,
    original): MASE's scale in levels."""

    kinds: tuple[str, ...]
    scaler: PanelScaler
    naive_mae_scaled: np.ndarray
    naive_mae_original: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "scaler": self.scaler.to_dict(),
            "naive_mae_scaled": [float(v) for v in self.naive_mae_scaled],
            "naive_mae_original": [float(v) for v in self.naive_mae_original],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> LevelState | None:
        if d is None:
            return None
        kinds = tuple(str(k) for k in d["kinds"])
        for kind in kinds:
            _check_kind(kind, None)
        return cls(
            kinds,
            PanelScaler.from_dict(d["scaler"]),
            np.asarray(d["naive_mae_scaled"], dtype=np.float64),
            np.asarray(d["naive_mae_original"], dtype=np.float64),
        )
