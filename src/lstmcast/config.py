"""The one run configuration: every option of `lstmcast train`, its TOML key and the Python
keyword of `Forecaster` are the same field of `RunConfig`."""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstmcast import choices
from lstmcast.checks import check_choice, check_int
from lstmcast.data.calendar import calendar_spec, check_exchange, check_holidays
from lstmcast.data.macro import parse_lag
from lstmcast.data.transform import DIFFERENCING, kinds_named, parse_transform
from lstmcast.errors import ConfigError

OPTIMIZERS = choices.values(choices.Optimizer)
LOSSES = choices.values(choices.Loss)
_POSITIVE = ("lookback", "horizon", "stride", "epochs", "batch_size", "plot_step", "ensemble")
_NON_NEGATIVE = ("patience", "divergence_retries", "seed", "id_embedding")
_CHOICES = {
    "fill": choices.Fill,
    "duplicates": choices.Duplicates,
    "scaler": choices.ScalerKind,
    "optimizer": choices.Optimizer,
    "loss": choices.Loss,
    "interval_method": choices.IntervalMethod,
    "ensemble_reduce": choices.EnsembleReduce,
}
QUANTILE_METHODS = (choices.IntervalMethod.quantile.value, choices.IntervalMethod.cqr.value)


# The model a run trains unless told: robust on any series of the broad accuracy table (it
# never blew up, and sat at repeat_last where nothing beats it); the presets are the
# tutorial's, kept by name. See docs/design.md.
DEFAULT_MODEL = "seglstm"


@dataclass(frozen=True)
class RunConfig:
    """Data, model and training options of one run. `None` means "the model's default"."""

    model: str = DEFAULT_MODEL
    lookback: int | None = None  # None: chosen from the data at fit (workflows.defaults)
    horizon: int = 1
    # data
    targets: tuple[str, ...] | None = None
    covariates: tuple[str, ...] = ()  # past-only inputs (known up to the forecast origin)
    time_col: str | None = None
    id_col: str | None = None  # long format: one series per id
    future_covariates: tuple[str, ...] = ()  # known in advance: read over the horizon too
    static: tuple[str, ...] = ()  # constant per id (numeric, or categories embedded)
    calendar: str = "none"  # auto | none | features such as "hour,dayofweek"
    holidays: str | None = None  # country code (the holidays package) for a holiday flag
    exchange: str | None = None  # market code (e.g. XNYS): future trading days skip its holidays
    macro: str | None = None  # a table at its own frequency, joined as-of as past covariates
    release_lag: str | None = None  # e.g. "45D": a macro value is used only this long after
    id_embedding: int = 0  # width of a learned embedding of the series id (0 = none)
    transform: str = "none"  # per target: "log-returns" or "Close=log-returns,Volume=log"
    market: bool = False  # report return hit rates, Theil's U2 and a long/short illustration
    cost_bps: float = 0.0  # the long/short illustration's cost per unit of position change
    fill: str = "error"
    duplicates: str = "error"  # rows repeating a timestamp: error | first | last | mean
    scaler: str = "standard"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    val_start: str | None = None
    test_start: str | None = None
    stride: int = 1
    memmap: bool = False  # values in a float32 memory-mapped file (series larger than RAM)
    # model overrides (passed to `lstmcast.models.build` when set)
    layers: tuple[int, ...] | None = None
    dropout: float | None = None
    activation: str | None = None
    bidirectional: bool | None = None
    period: int | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    ensemble: int = 1  # K > 1: K members (seglstm, lstm, presets) trained as one model, their mean
    ensemble_reduce: str = "mean"  # or the kept members' median
    # training
    epochs: int = 100
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    loss: str = "mse"
    patience: int = 10
    clip_norm: float = 1.0
    divergence_retries: int = 2  # on divergence: back to the best weights, lr / 4, go on
    seed: int = 0
    device: str = "auto"
    cuda_graph: bool = True  # capture the training step as a CUDA graph on CUDA devices
    amp: bool = False  # bf16 autocast (CUDA)
    # prediction intervals
    intervals: tuple[float, ...] = ()  # levels, e.g. (0.8, 0.95); () = point forecasts only
    interval_method: str = "conformal"
    quantiles: tuple[float, ...] | None = None  # quantile head; None = from the levels
    mc_samples: int = 100  # stochastic passes of mc-dropout
    adaptive_gamma: float = 0.0  # conformal levels adapt to recent misses at this rate; 0 = off
    plot_step: int = 1  # the horizon step the test-split plot draws

    def __post_init__(self) -> None:
        for name in (*_POSITIVE, *_NON_NEGATIVE):  # stored as plain ints (JSON-safe)
            if name == "lookback" and self.lookback is None:
                continue
            minimum = 1 if name in _POSITIVE else 0
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum))
        for name, allowed in _CHOICES.items():
            check_choice(name, getattr(self, name), choices.values(allowed))
            object.__setattr__(self, name, str(getattr(self, name)))  # an Enum member -> str
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value < 1:
                raise ConfigError(
                    f"The '{name}' parameter must be a number in [0, 1). Got {value!r} instead."
                )
        if self.test_start is None and self.test_fraction <= 0:
            raise ConfigError("The 'test_fraction' parameter must be > 0. Got 0 instead.")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                "'val_fraction' + 'test_fraction' must be < 1 so that rows remain for training. "
                f"Got {self.val_fraction} + {self.test_fraction}."
            )
        if self.val_start is not None and self.test_start is None:
            raise ConfigError(
                "'val_start' must be given together with 'test_start' "
                "('test_start' alone means no validation split)."
            )
        if not isinstance(self.lr, int | float) or self.lr <= 0:
            raise ConfigError(f"The 'lr' parameter must be a number > 0. Got {self.lr!r} instead.")
        if not isinstance(self.clip_norm, int | float) or self.clip_norm < 0:
            raise ConfigError(
                f"The 'clip_norm' parameter must be >= 0 (0 turns clipping off). "
                f"Got {self.clip_norm!r} instead."
            )
        object.__setattr__(self, "intervals", _levels(self.intervals))
        if self.quantiles is not None:
            object.__setattr__(self, "quantiles", _quantiles(self.quantiles))
        mc_samples = check_int("mc_samples", self.mc_samples, minimum=2)
        object.__setattr__(self, "mc_samples", mc_samples)
        gamma = self.adaptive_gamma
        if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not 0 <= gamma < 1:
            raise ConfigError(
                f"The 'adaptive_gamma' parameter must be a number in [0, 1), e.g. 0.005 "
                f"(0 = off). Got {gamma!r} instead."
            )
        conformalised = (choices.IntervalMethod.conformal, choices.IntervalMethod.cqr)
        if gamma and self.interval_method not in conformalised:
            raise ConfigError(
                f"The 'adaptive_gamma' parameter adapts conformal intervals; it needs "
                f"--interval-method conformal or cqr. Got {self.interval_method!r}."
            )
        if self.ensemble_reduce != choices.EnsembleReduce.mean and self.ensemble < 2:
            raise ConfigError(
                f"--ensemble-reduce {self.ensemble_reduce} combines an ensemble's members; it "
                "needs --ensemble K with K >= 2"
            )
        spread = self.interval_method == choices.IntervalMethod.spread
        if self.intervals and spread and self.ensemble < 2:
            raise ConfigError(
                "--interval-method spread scales the intervals by the ensemble members' "
                "spread; it needs --ensemble K with K >= 2 (or use --interval-method conformal)"
            )
        if self.plot_step > self.horizon:
            raise ConfigError(
                f"The 'plot_step' parameter must be an int in [1, horizon={self.horizon}]. "
                f"Got {self.plot_step} instead."
            )
        if self.interval_method in QUANTILE_METHODS:
            needed = quantiles_for(self.intervals)
            missing = [q for q in needed if q not in (self.quantiles or needed)]
            if missing:
                raise ConfigError(
                    f"The 'quantiles' option lacks {', '.join(map(str, missing))}, which the "
                    f"intervals {', '.join(map(str, self.intervals))} and the point forecast "
                    f"(0.5) need. Got {', '.join(map(str, self.quantiles or ()))}."
                )
        self._check_panel()
        self._check_market()
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")
        ):
            raise ConfigError(
                f"The 'device' parameter must be auto, cpu, cuda or cuda:N. Got {self.device!r}."
            )

    def _check_market(self) -> None:
        """The target transform and the market measures (see lstmcast.data.transform)."""
        object.__setattr__(self, "transform", parse_transform(self.transform))
        for name in ("market", "memmap"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"The '{name}' option is true or false. Got {getattr(self, name)!r}."
                )
        cost = self.cost_bps
        if isinstance(cost, bool) or not isinstance(cost, int | float) or not 0 <= cost < 10000:
            raise ConfigError(
                f"The 'cost_bps' option is a cost in basis points in [0, 10000), e.g. 5. "
                f"Got {cost!r} instead."
            )
        kinds = kinds_named(self.transform)
        if self.intervals and kinds & set(DIFFERENCING):
            raise ConfigError(
                f"Prediction intervals with --transform {self.transform} are not built yet: a "
                f"level is a sum of forecast returns, and a band of each return is no band of "
                f"the level (nor is repeat_last's). Use transform none or log for intervals."
            )

    @property
    def wants_market(self) -> bool:
        """The market measures: asked for, or implied by a returns transform."""
        kinds = kinds_named(self.transform)
        return self.market or bool(kinds & {"returns", "log-returns"})

    def _check_panel(self) -> None:
        """The long-format and known-in-advance options (see lstmcast.data.panel)."""
        calendar = self.calendar
        if isinstance(calendar, tuple | list):
            calendar = ",".join(map(str, calendar))
        if not isinstance(calendar, str):
            raise ConfigError(
                f"The 'calendar' option takes auto, none or a list of features. Got {calendar!r}."
            )
        if calendar not in ("auto", "none"):
            calendar = ",".join(calendar_spec(calendar, None))  # validates the names
        object.__setattr__(self, "calendar", calendar or "none")
        object.__setattr__(self, "holidays", check_holidays(self.holidays))
        object.__setattr__(self, "exchange", check_exchange(self.exchange))
        parse_lag(self.release_lag)
        if self.release_lag is not None and self.macro is None:
            raise ConfigError("The 'release_lag' option delays --macro values; give --macro too.")
        if self.id_col is None:
            for name in ("static", "id_embedding"):
                if getattr(self, name):
                    raise ConfigError(
                        f"The '{name}' option needs 'id_col' (a long table of many series)."
                    )
        roles = {"covariates": self.covariates, "future_covariates": self.future_covariates}
        roles |= {"static": self.static, "targets": self.targets or ()}
        seen: dict[str, str] = {}
        for role, names in roles.items():
            for name in names:
                if name in seen and seen[name] != role:
                    raise ConfigError(
                        f"Column '{name}' is in both '{seen[name]}' and '{role}'; a column has "
                        f"one role."
                    )
                seen[name] = role
        if self.id_col is not None and self.id_col in seen:
            raise ConfigError(
                f"Column '{self.id_col}' is the id column; not in '{seen[self.id_col]}'."
            )

    @property
    def has_known_inputs(self) -> bool:
        """True when the model reads inputs known in advance (a context vector)."""
        return bool(
            self.future_covariates
            or self.calendar != "none"
            or self.holidays
            or self.static
            or self.id_embedding
        )

    @property
    def lookback_rows(self) -> int:
        """The lookback once chosen: `fit` (and backtest, compare, tune) chooses it from the
        data when it is None (see `lstmcast.workflows.defaults`), before anything reads it."""
        if self.lookback is None:
            raise ConfigError("internal: the lookback is read before it was chosen from the data")
        return self.lookback

    def model_overrides(self) -> dict[str, Any]:
        """The model options that were set, for `lstmcast.models.build` (with the quantile
        head's levels when the interval method trains one)."""
        overrides = {
            name: getattr(self, name)
            for name in ("layers", "dropout", "activation", "bidirectional", "period")
            if getattr(self, name) is not None
        }
        overrides.update(self.model_options)
        if self.ensemble > 1:
            overrides["members"] = self.ensemble
        if self.ensemble_reduce != choices.EnsembleReduce.mean:  # the model's default
            overrides["reduce"] = self.ensemble_reduce
        if self.head_quantiles():
            overrides["quantiles"] = self.head_quantiles()
        return overrides

    def head_quantiles(self) -> tuple[float, ...]:
        """The quantile head's levels: `quantiles`, or those the intervals need; () when the
        interval method trains no quantile head."""
        if self.interval_method not in QUANTILE_METHODS or not self.intervals:
            return ()
        return self.quantiles or quantiles_for(self.intervals)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }


FIELDS = {f.name for f in dataclasses.fields(RunConfig)}
_TUPLE_FIELDS = {
    "targets": str,
    "covariates": str,
    "future_covariates": str,
    "static": str,
    "layers": int,
    "intervals": float,
    "quantiles": float,
}


def quantiles_for(levels: tuple[float, ...]) -> tuple[float, ...]:
    """The quantiles a central interval of each level needs, with the median: (1 - level) / 2
    and (1 + level) / 2, rounded so that 0.8 gives exactly 0.1 and 0.9."""
    taus = {0.5}
    for level in levels:
        taus.update((round((1 - level) / 2, 10), round((1 + level) / 2, 10)))
    return tuple(sorted(taus))


def _unit_numbers(name: str, value: Any, example: str) -> tuple[float, ...]:
    """`value` as floats, each in (0, 1) (a ConfigError names the first that is not)."""
    numbers = tuple(value)
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, int | float) or not 0 < number < 1:
            raise ConfigError(
                f"The '{name}' option takes levels in (0, 1), e.g. {example}. "
                f"Got {number!r} instead."
            )
    return tuple(float(number) for number in numbers)


def _levels(value: Any) -> tuple[float, ...]:
    levels = _unit_numbers("intervals", value, "0.8,0.95")
    if len(set(levels)) != len(levels):
        raise ConfigError(f"The 'intervals' option repeats a level. Got {list(levels)} instead.")
    return tuple(sorted(levels))


def _quantiles(value: Any) -> tuple[float, ...]:
    taus = _unit_numbers("quantiles", value, "0.05,0.5,0.95")
    if any(b <= a for a, b in itertools.pairwise(taus)):
        raise ConfigError(
            f"The 'quantiles' option must be increasing without repeats. Got {list(taus)} instead."
        )
    return taus


def make_config(values: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """A RunConfig from `base` (defaults if None) with `values` replacing fields.

    Unknown keys, and comma-separated strings for list fields, are handled here so that the
    CLI, TOML files and Python keywords all go through the same checks.
    """
    unknown = sorted(set(values) - FIELDS)
    if unknown:
        raise ConfigError(f"unknown option '{unknown[0]}'; allowed: {', '.join(sorted(FIELDS))}")
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if key in _TUPLE_FIELDS and value is not None:
            value = as_tuple(key, value, _TUPLE_FIELDS[key])
        if key == "model_options" and not isinstance(value, dict):
            raise ConfigError(f"'model_options' must be a table of key = value. Got {value!r}.")
        cleaned[key] = value
    try:
        return dataclasses.replace(base or RunConfig(), **cleaned)
    except TypeError as exc:  # pragma: no cover - every field is covered above
        raise ConfigError(str(exc)) from exc


def read_toml(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file (keys are RunConfig fields; `[search]` etc. are returned too)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file '{file}' does not exist")
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{file}' is not valid TOML: {exc}") from exc


def as_tuple(name: str, value: Any, kind: type) -> tuple[Any, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        result = tuple(
            kind(str(item).strip()) if kind in (int, float) else str(item).strip() for item in items
        )
    except ValueError as exc:
        raise ConfigError(
            f"The '{name}' option must be a comma-separated list of {kind.__name__}s. "
            f"Got {value!r} instead."
        ) from exc
    if any(item == "" for item in result):
        raise ConfigError(f"The '{name}' option has an empty entry. Got {value!r} instead.")
    return result
