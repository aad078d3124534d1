"""The Optuna study behind `lstmcast tune`: storage, sampler, pruner, and the count that lets
many workers share one budget of N trials.

Trials that count towards N are the finished ones (complete or pruned) and the ones running
now; failed or interrupted trials do not, so a resumed study makes them up. A worker checks
the count before it starts, after every trial, and once more inside each new trial against the
trials numbered before it (numbers are assigned under a lock by the storage), so workers that
start together never run more than N between them.
"""

from __future__ import annotations

import random
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, Trial, TrialState

from lstmcast import choices
from lstmcast.errors import ConfigError, StorageError

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
PRUNERS = choices.values(choices.Pruner)
HEARTBEAT_S = 60  # a trial whose worker stopped beating this long x3 is failed (and made up)
META_KEY = "lstmcast"
RESUMES = "resumes"  # a make-up trial's attribute: the interrupted trial it goes on from
CREATE_TRIES = 5
# A bare postgresql:// means psycopg (v3), the driver `lstmcast[postgres]` installs. SQLAlchemy
# picks its default driver by version (psycopg2 before 2.1, psycopg from 2.1), so without
# naming it the same URL would need a different driver depending on what else is installed.
POSTGRES = "postgresql://"
POSTGRES_DRIVER = "postgresql+psycopg://"
POSTGRES_EXTRA = "pip install 'lstmcast[postgres]'"


class Surplus(Exception):
    """Raised inside a trial that another worker's trials made one too many."""


class PerTrialSeedTPE(BaseSampler):
    """TPE whose random state is seeded from (seed, trial number), so a single worker repeats
    exactly, a resumed study does not replay its first draws, and workers sharing a study do
    not propose the same configurations. `constant_liar` steers away from running trials.
    Interrupted trials that were made up from their checkpoint (`RESUMES`) are not numbered:
    the make-up takes their place, so a killed and resumed study draws what an uninterrupted
    one draws."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._inner = self._tpe(0)

    def _tpe(self, number: int) -> TPESampler:
        state = np.random.SeedSequence([self._seed, number]).generate_state(1)[0]
        return TPESampler(seed=int(state), constant_liar=True)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._inner = self._tpe(trial.number - replaced_before(study, trial.number))
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Any,
    ) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def replaced_before(study: Study, number: int) -> int:
    """How many trials numbered below `number` failed and were made up by a later trial that
    goes on from their checkpoint (see `lstmcast.workflows.tuning.resume`)."""
    trials = study.get_trials(deepcopy=False)
    makeups = [(t.number, t.user_attrs[RESUMES]) for t in trials if RESUMES in t.user_attrs]
    replaced = 0
    for t in trials:
        if t.number < number and t.state == TrialState.FAIL:
            origin = t.user_attrs.get(RESUMES, t.number)
            replaced += any(n > t.number and o == origin for n, o in makeups)
    return replaced


def storage_url(storage: str | None, out: str | Path | None) -> str | None:
    """The SQLAlchemy URL: `storage` as given (a plain path means a SQLite file; a bare
    `postgresql://` names the psycopg driver), else `<out>/study.db`; None (in memory) when
    neither is given."""
    if storage is None:
        if out is None:
            return None
        storage = str(Path(out) / "study.db")
    if storage.startswith(POSTGRES):
        return POSTGRES_DRIVER + storage.removeprefix(POSTGRES)
    if "://" in storage:
        return storage
    path = Path(storage).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def files_inside(url: str | None, directory: Path) -> tuple[str, ...]:
    """The files of a SQLite study database that lie in `directory` (relative paths), with
    the journals SQLite keeps beside it; none for another storage."""
    if url is None or not url.startswith("sqlite:///"):
        return ()
    database = Path(url.removeprefix("sqlite:///")).resolve()
    try:
        relative = database.relative_to(directory.resolve())
    except ValueError:
        return ()
    return tuple(f"{relative}{suffix}" for suffix in ("", "-journal", "-wal", "-shm"))


def shown_url(url: str | None) -> str:
    """The URL with any password masked, for messages and tune.json."""
    if url is None:
        return "memory"
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by open_study; show it as given
        return url


def make_pruner(pruner: str | optuna.pruners.BasePruner, max_steps: int) -> Any:
    """'median': stop a trial whose best loss is worse than the median of earlier trials at the
    same epoch (after 5 trials, from epoch 2); 'hyperband': successive halving over epochs."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(max_steps, 1))
    raise ConfigError(f"The 'pruner' parameter must be median or hyperband. Got {pruner!r}.")


def open_study(
    url: str | None, name: str, *, seed: int, pruner: Any, meta: dict[str, Any]
) -> Study:
    """Create the study, or load it when it exists (resuming); `meta` (data hash, fixed
    options, folds) must match what the study was started with."""
    storage = _rdb_storage(url) if url is not None else None
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="minimize",
        sampler=PerTrialSeedTPE(seed),
        pruner=pruner,
        load_if_exists=True,
    )
    if study.direction != StudyDirection.MINIMIZE:
        raise ConfigError(f"study '{name}' in '{shown_url(url)}' maximizes; use another --study")
    _check_meta(study, meta, url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # trials of workers that died count no longer
    return study


def _rdb_storage(url: str) -> Any:
    """An RDBStorage with heartbeats. Workers that open a new database at the same moment race
    to create its tables; the losers retry (by then the tables exist). Any other failure is one
    StorageError line: the driver's reason, or the driver to install."""
    import sqlalchemy.exc

    engine: dict[str, Any] = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(CREATE_TRIES):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=3 * HEARTBEAT_S,
                )
        except sqlalchemy.exc.DBAPIError as exc:  # PostgreSQL's race: "relation ... exists"
            if attempt + 1 < CREATE_TRIES and _is_creation_race(exc):
                time.sleep(0.2 + random.random())
                continue
            raise StorageError(
                f"cannot open storage '{shown_url(url)}': {_reason(exc, url)}"
            ) from exc
        except ImportError as exc:
            raise StorageError(
                f"cannot open storage '{shown_url(url)}': {_missing_driver(exc, url)}"
            ) from exc
        except (ValueError, sqlalchemy.exc.SQLAlchemyError) as exc:
            raise StorageError(
                f"cannot open storage '{shown_url(url)}': {_reason(exc, url)}"
            ) from exc
    raise StorageError(f"cannot open storage '{shown_url(url)}'")  # pragma: no cover


def _is_creation_race(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("already exists", "unique constraint", "duplicate", "locked"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _reason(exc: Exception, url: str) -> str:
    """The driver's own first line (connection refused, unknown host, password refused, no
    such database), without SQLAlchemy's wrapping and never with the password."""
    from sqlalchemy.engine import make_url

    reason = _first_line(getattr(exc, "orig", None) or exc)
    reason = " ".join(reason.removeprefix("connection failed: ").split())
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        reason = reason.replace(str(password), "***")
    return reason


def _missing_driver(exc: ImportError, url: str) -> str:
    """Which driver module is missing (or broken) and how to install it."""
    from sqlalchemy.engine import make_url

    cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
    if url.startswith(POSTGRES_DRIVER):
        missing = isinstance(cause, ModuleNotFoundError) and cause.name == "psycopg"
        what = "is not installed" if missing else f"cannot be imported ({_first_line(cause)})"
        return f"its driver psycopg {what}; install it with {POSTGRES_EXTRA}"
    try:
        driver = make_url(url).get_driver_name()
    except Exception:
        driver = "of this URL"
    hint = f" or use postgresql:// with {POSTGRES_EXTRA}" if url.startswith("postgresql") else ""
    return f"its driver module {cause.name or driver} is not installed; install it{hint}"


def counted(study: Study, before: int | None = None) -> int:
    """Trials that count towards N (finished or running), optionally only those numbered
    below `before`."""
    trials = study.get_trials(deepcopy=False, states=COUNTED)
    return sum(1 for t in trials if before is None or t.number < before)


def claim(trial: Trial, n_trials: int) -> None:
    """Stop the study and raise Surplus when N trials numbered before this one already count."""
    if counted(trial.study, before=trial.number) >= n_trials:
        trial.set_user_attr("surplus", True)
        trial.study.stop()
        raise Surplus(f"the study already has its {n_trials} trials")


def stop_at(n_trials: int) -> Any:
    """A callback that stops this worker once N trials count."""

    def callback(study: Study, trial: FrozenTrial) -> None:
        if counted(study) >= n_trials:
            study.stop()

    return callback


def completed(study: Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _check_meta(study: Study, meta: dict[str, Any], url: str | None) -> None:
    stored = study.user_attrs.get(META_KEY)
    if stored is None:
        study.set_user_attr(META_KEY, meta)
        return
    where = f"study '{study.study_name}' in '{shown_url(url)}'"
    if stored.get("data_sha256") != meta["data_sha256"]:
        raise ConfigError(
            f"{where} was run on different data (sha256 {str(stored.get('data_sha256'))[:12]}, "
            f"this data {meta['data_sha256'][:12]}); use another --study or --storage"
        )
    for key in ("folds", "model"):
        if stored.get(key) != meta[key]:
            raise ConfigError(
                f"{where} was run with {key} {stored.get(key)!r}, this run has {meta[key]!r}; "
                f"use the same options or another --study"
            )
    old, new = stored.get("config", {}), meta["config"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise ConfigError(
                f"{where} was run with {key} = {old.get(key)!r}, this run has "
                f"{new.get(key)!r}; use the same options or another --study"
            )
