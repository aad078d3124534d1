"""The search space of `lstmcast tune`: its dimensions, the `[search]` table that narrows or
fixes them, and the mapping from a trial's parameters to a `RunConfig`.

`[search]` schema, one key per dimension (any key left out keeps its default):

    layers = [1, 2]            # range dimension: [low, high] (inclusive), or one value = fixed
    units = [16, 128]          # units of every LSTM layer, sampled per layer on a log scale
    dropout = 0.2              # fixed
    lr = [1e-4, 3e-3]          # log scale
    activation = ["tanh"]      # choice dimension: a list of choices, or one value = fixed
    lookback = [24, 48, 96]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lstmcast.config import LOSSES, OPTIMIZERS, RunConfig, make_config
from lstmcast.errors import ConfigError
from lstmcast.models import ACTIVATIONS

if TYPE_CHECKING:
    from optuna.trial import Trial

MAX_LAYERS = 8
# Model options a dimension sets; models whose config lacks the field do not search it.
ARCHITECTURE = ("layers", "units", "dropout", "activation", "bidirectional")


@dataclass(frozen=True)
class Range:
    """Numbers from `low` to `high` (inclusive); `kind` is int or float."""

    kind: type
    low: float
    high: float
    log: bool = False

    def describe(self) -> dict[str, Any]:
        return {"range": [self.low, self.high], "log": self.log}


@dataclass(frozen=True)
class Choice:
    """One of `values`."""

    values: tuple[Any, ...]

    def describe(self) -> dict[str, Any]:
        return {"choices": list(self.values)}


Dimension = Range | Choice


@dataclass(frozen=True)
class _Rule:
    """What a dimension accepts: `default` and the bounds (ranges) or allowed values (choices)."""

    default: Dimension
    kind: type  # int, float, str or bool
    allowed: tuple[float, float] | tuple[Any, ...]  # (min, max) for ranges, else the values


RULES: dict[str, _Rule] = {
    "layers": _Rule(Range(int, 1, 3), int, (1, MAX_LAYERS)),
    "units": _Rule(Range(int, 16, 256, log=True), int, (1, 4096)),
    "dropout": _Rule(Range(float, 0.0, 0.5), float, (0.0, 0.95)),
    "lr": _Rule(Range(float, 1e-4, 1e-2, log=True), float, (1e-7, 1.0)),
    "bidirectional": _Rule(Choice((False, True)), bool, (False, True)),
    "activation": _Rule(Choice(("tanh", "relu")), str, tuple(ACTIVATIONS)),
    "optimizer": _Rule(Choice(OPTIMIZERS), str, OPTIMIZERS),
    "loss": _Rule(Choice(LOSSES), str, LOSSES),
    "batch_size": _Rule(Choice((16, 32, 64, 128)), int, (1, 1 << 20)),
    "lookback": _Rule(Choice((10, 20, 40)), int, (1, 1 << 20)),
}


@dataclass(frozen=True)
class SearchSpace:
    """One `Dimension` per name of `RULES`; `dims` without the architecture dimensions the
    model does not have (see `for_model`)."""

    dims: dict[str, Dimension]

    def for_model(self, model_fields: set[str]) -> SearchSpace:
        """Drop the architecture dimensions whose option the model's config lacks."""
        keep = {
            name: dim
            for name, dim in self.dims.items()
            if name not in ARCHITECTURE or (name if name != "units" else "layers") in model_fields
        }
        return SearchSpace(keep)

    def describe(self) -> dict[str, Any]:
        return {name: dim.describe() for name, dim in self.dims.items()}

    def max_lookback(self) -> int:
        dim = self.dims["lookback"]
        return int(max(dim.values)) if isinstance(dim, Choice) else int(dim.high)

    def suggest(self, trial: Trial) -> dict[str, Any]:
        """Draw one value of every dimension (fixed ones too, so every trial records them).
        Units are drawn per layer as `units_1` ... `units_<layers>`."""
        params: dict[str, Any] = {}
        for name, dim in self.dims.items():
            if name == "units":
                continue
            params[name] = _suggest(trial, name, dim)
        if "units" in self.dims:
            for k in range(1, int(params["layers"]) + 1):
                params[f"units_{k}"] = _suggest(trial, f"units_{k}", self.dims["units"])
        return params


def parse_search(table: Any) -> SearchSpace:
    """The search space from a `[search]` table (None or {} = every default)."""
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ConfigError(f"[search] must be a table of dimension = value. Got {table!r}.")
    unknown = sorted(set(table) - set(RULES))
    if unknown:
        raise ConfigError(f"unknown search dimension '{unknown[0]}'; allowed: {', '.join(RULES)}")
    dims = {
        name: _parse(name, table[name], rule) if name in table else rule.default
        for name, rule in RULES.items()
    }
    return SearchSpace(dims)


def config_for(base: RunConfig, params: dict[str, Any]) -> RunConfig:
    """`base` with a trial's parameters in place (`units_k` become the `layers` tuple)."""
    values: dict[str, Any] = {}
    for name, value in params.items():
        if name == "layers" or name.startswith("units_"):
            continue
        values[name] = value
    if "layers" in params and "units_1" in params:
        values["layers"] = tuple(int(params[f"units_{k}"]) for k in range(1, params["layers"] + 1))
    return make_config(values, base)


def searched_fields(space: SearchSpace) -> list[str]:
    """The RunConfig fields that trials set (so they must not be fixed outside `[search]`)."""
    return [name for name in space.dims if name != "units"]


def _suggest(trial: Trial, name: str, dim: Dimension) -> Any:
    if isinstance(dim, Choice):
        return trial.suggest_categorical(name, list(dim.values))
    if dim.kind is int:
        return trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
    return trial.suggest_float(name, dim.low, dim.high, log=dim.log)


def _parse(name: str, value: Any, rule: _Rule) -> Dimension:
    """One `[search]` entry: a single value (fixed), [low, high] (ranges) or [choices]."""
    items = value if isinstance(value, list) else [value]
    typed = bool(items) and all(_is(rule.kind, v) for v in items)
    if isinstance(rule.default, Range):
        low_allowed, high_allowed = rule.allowed
        if typed and len(items) <= 2 and low_allowed <= items[0] <= items[-1] <= high_allowed:
            return Range(rule.kind, rule.kind(items[0]), rule.kind(items[-1]), rule.default.log)
        kind = rule.kind.__name__
        article = "an" if kind == "int" else "a"
        raise ConfigError(
            f"search.{name} must be {article} {kind} in [{low_allowed:g}, {high_allowed:g}] "
            f"(fixed) or a range [low, high] of such {kind}s with low <= high. Got {value!r}."
        )
    if rule.kind is int:
        low_allowed, high_allowed = rule.allowed
        if typed and all(low_allowed <= v <= high_allowed for v in items):
            return Choice(tuple(dict.fromkeys(items)))
        raise ConfigError(
            f"search.{name} must be an int in [{low_allowed}, {high_allowed}] (fixed) or a "
            f"non-empty list of such ints (choices). Got {value!r}."
        )
    if typed and all(v in rule.allowed for v in items):
        return Choice(tuple(dict.fromkeys(items)))  # keep order, drop repeats
    allowed = ", ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in rule.allowed)
    raise ConfigError(
        f"search.{name} must be one of {allowed} (fixed) or a non-empty list of them "
        f"(choices). Got {value!r}."
    )


def _is(kind: type, value: Any) -> bool:
    """TOML-typed check: bools are not numbers, ints count as floats, floats must be finite."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, kind)


__all__ = [
    "ARCHITECTURE",
    "RULES",
    "Choice",
    "Range",
    "SearchSpace",
    "config_for",
    "parse_search",
    "searched_fields",
]


def fix_searched(
    search: dict[str, Any] | None, options: dict[str, Any], given: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Move the options in `given` (command-line flags) that name a searched dimension out of
    `options` and into the `[search]` table as fixed values: `--lr 1e-3` fixes lr for every
    trial, `--layers 64,64` fixes two layers of 64 units. Returns (search, options)."""
    table = dict(search or {})
    rest = dict(options)
    for name in sorted(given & (set(RULES) | {"layers"})):
        value = rest.pop(name)
        if name == "layers":
            units = [int(u) for u in (value.split(",") if isinstance(value, str) else value)]
            if len(set(units)) != 1:
                raise ConfigError(
                    f"tune draws every layer's units from one range, so --layers {value} "
                    "cannot be fixed; give equal sizes (e.g. 64,64) or set [search] units"
                )
            table["layers"], table["units"] = len(units), units[0]
        else:
            table[name] = value
    return table, rest
