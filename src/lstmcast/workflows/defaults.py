"""Options left to the data: what `fit` chooses when the lookback, or the width, depth or
dropout of `lstm` and `seglstm`, is not given. The Keras presets (`simple`, `stacked`,
`bidirectional`) are never changed: their sizes are their definition.

- lookback: a few seasons of the data's frequency (4 x 24 hourly rows, 4 x 7 daily rows,
  4 x 12 monthly rows, ...; `evaluation.baselines.frequency_season`), as many as a quarter of
  the typical series' training rows allow (at least one season), else that quarter itself;
  32 rows without a known season.
- seglstm's segment: a divisor of the lookback that leaves at least two segments, the season
  itself when it divides the lookback (at most 48 rows), else the divisor nearest sqrt(L).
- seglstm's hidden and dropout: from the training samples (windows x targets: it reads every
  target on its own), a power of two near samples/128 within 128-512, and dropout 0.1, 0.3 or
  0.5 below 2,000, below 20,000 and above; on ETTh1 that is its benchmark size (512, 0.5).
- lstm's one layer: 128 units and dropout 0.1 (seglstm and lstm were chosen on the validation
  split of the broad accuracy table, where a narrower net for fewer windows lost).
- seasonal_naive's period: the frequency's season where the lookback holds it (12 monthly
  rows, 7 daily rows), the season the report's seasonal_naive baseline starts from; else the
  model's own default (24).

Every value chosen is returned with the reason, printed by the CLI and stored in run.json
(`derived`) and in the model file (the config holds the values). See docs/design.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmcast.config import RunConfig
from lstmcast.data.panel import Panel, panel_splits
from lstmcast.evaluation.baselines import frequency_season, season_words

NO_SEASON_LOOKBACK = 32
MAX_SEGMENT = 48
SEASONS_PER_WINDOW = 4
LSTM_LAYERS, LSTM_DROPOUT = (128,), 0.1


@dataclass(frozen=True)
class Chosen:
    """One option `fit` chose: its name, value and why."""

    name: str
    value: Any
    why: str

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"name": self.name, "value": value, "why": self.why}


def resolve(config: RunConfig, panel: Panel) -> tuple[RunConfig, list[Chosen]]:
    """`config` with every option left to the data chosen, and what was chosen."""
    chosen: list[Chosen] = []
    if config.lookback is None:
        lookback, why = default_lookback(panel, config)
        chosen.append(Chosen("lookback", lookback, why))
        config = dataclasses.replace(config, lookback=lookback)
    if config.model == "seglstm":
        config, more = _seglstm(config, panel)
        chosen += more
    elif config.model == "lstm":
        config, more = _lstm(config, panel)
        chosen += more
    elif config.model == "seasonal_naive" and config.period is None:
        season = frequency_season(panel.freq)
        if season is not None and season <= int(config.lookback or 0):
            chosen.append(Chosen("period", season, str(season_words(panel.freq, 1))))
            config = dataclasses.replace(config, period=season)
    return config, chosen


def train_rows(panel: Panel, config: RunConfig) -> np.ndarray:
    """(S,) each series' training rows under `config`'s split (0 for a series too short)."""
    splits = panel_splits(
        panel,
        1,
        config.horizon,
        config.val_fraction,
        config.test_fraction,
        config.val_start,
        config.test_start,
    )
    return np.array([0 if s is None else s.train[1] - s.train[0] for s in splits.splits])


def default_lookback(panel: Panel, config: RunConfig) -> tuple[int, str]:
    rows = train_rows(panel, config)
    typical = int(np.median(rows[rows > 0])) if (rows > 0).any() else len(panel)
    room = max(2, typical // 4)  # a quarter of the training rows: most of them give windows
    season = frequency_season(panel.freq)
    if season is not None and season <= room:
        k = min(SEASONS_PER_WINDOW, room // season)
        return k * season, str(season_words(panel.freq, k))
    if season is None and room >= NO_SEASON_LOOKBACK:
        return NO_SEASON_LOOKBACK, "no season is known for the data's frequency"
    lookback = max(2, room - room % 4 if room >= 8 else room)
    return lookback, f"a quarter of the {typical} training rows of a typical series"


def samples(panel: Panel, config: RunConfig) -> int:
    """Training windows (stride 1) over every series."""
    L, H = int(config.lookback or 1), config.horizon
    return int(np.maximum(train_rows(panel, config) - L - H + 1, 0).sum())


def width_for(n: int, low: int, high: int, per_unit: int) -> int:
    """A power of two near n / per_unit, within [low, high]."""
    if n <= 0:
        return low
    return int(min(high, max(low, 2 ** round(math.log2(max(n / per_unit, 1))))))


def dropout_for(n: int) -> float:
    return 0.1 if n < 2_000 else 0.3 if n < 20_000 else 0.5


def segment_for(lookback: int, season: int | None) -> int:
    divisors = [d for d in range(2, lookback // 2 + 1) if lookback % d == 0]
    if not divisors:
        return lookback
    if season is not None:
        fitting = [d for d in divisors if season % d == 0 and d <= MAX_SEGMENT]
        if fitting:
            return max(fitting)
    return min(divisors, key=lambda d: (abs(d - math.sqrt(lookback)), -d))


def _seglstm(config: RunConfig, panel: Panel) -> tuple[RunConfig, list[Chosen]]:
    options, chosen = dict(config.model_options), []
    n = samples(panel, config) * panel.n_targets
    if "segment" not in options:
        season = frequency_season(panel.freq)
        options["segment"] = segment_for(int(config.lookback or 1), season)
        chosen.append(Chosen("segment", options["segment"], _segment_why(season)))
    if "hidden" not in options:
        options["hidden"] = width_for(n, 128, 512, 128)
        chosen.append(Chosen("hidden", options["hidden"], f"{n} training samples"))
    dropout = config.dropout
    if dropout is None and "dropout" not in options:
        dropout = dropout_for(n)
        chosen.append(Chosen("dropout", dropout, f"{n} training samples"))
    return dataclasses.replace(config, model_options=options, dropout=dropout), chosen


def _lstm(config: RunConfig, panel: Panel) -> tuple[RunConfig, list[Chosen]]:
    chosen = []
    layers, dropout = config.layers, config.dropout
    why = "best on the validation splits of the broad accuracy table"
    if layers is None:
        layers = LSTM_LAYERS
        chosen.append(Chosen("layers", layers, why))
    if dropout is None:
        dropout = LSTM_DROPOUT
        chosen.append(Chosen("dropout", dropout, why))
    return dataclasses.replace(config, layers=layers, dropout=dropout), chosen


def _segment_why(season: int | None) -> str:
    if season is None:
        return "a divisor of the lookback near its square root (no season known)"
    return f"a divisor of the lookback that fits the season of {season} rows"


def describe(chosen: list[Chosen]) -> str:
    """One line for the CLI: 'lookback 28 (4 weeks of 7 daily rows), ...'."""
    return ", ".join(f"{c.name} {_shown(c.value)} ({c.why})" for c in chosen)


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)
