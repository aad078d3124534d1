"""tune on a real PostgreSQL server, as the README's multi-machine recipe runs it: a bare
`postgresql://` URL (the driver comes with `lstmcast[postgres]`), two `lstmcast tune` workers
on one study, a worker SIGKILLed and restarted beside another worker and a live worker's
running trial, and one-line errors for a server that refuses, a wrong password and a missing
driver.

The server is the machine's own PostgreSQL (`initdb`, `pg_ctl`: .ci/run installs them when they
are missing), started on a free local port in a temporary directory and removed afterwards.
Missing binaries fail the tests: they are never skipped."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from processes import free_port, lstmcast
from typer.testing import CliRunner

from lstmcast.cli import app
from lstmcast.files import staging_path
from lstmcast.workflows.tuning.study import RESUMES, storage_url

PASSWORD = "s3cret-pw"
USER = "lstmcast"
DATABASE = "optuna"
TOML = (
    "epochs = 4\npatience = 0\n[search]\nlayers = 1\nunits = 4\nactivation = 'tanh'\n"
    "bidirectional = false\nbatch_size = 32\nlookback = [8, 12]\n"
)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class Server:
    url: str  # as the README writes it: postgresql://user:password@host:port/database
    port: int


def server_binaries() -> Path:
    """The directory holding initdb and pg_ctl: on PATH, else Debian's versioned directory."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(d) for d in sorted(glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) are not on PATH nor in "
        "/usr/lib/postgresql/*/bin: install them (apt-get install postgresql; .ci/run does)"
    )


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A PostgreSQL cluster of its own: password login over TCP on 127.0.0.1, its socket and
    data in a temporary directory; stopped and removed afterwards, whatever happened. The
    server refuses to run as root, so under root it runs as the `postgres` system user."""
    binaries = server_binaries()
    as_user: dict[str, object] = {}
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root needs the 'postgres' user to run the server as")
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    base = Path(tempfile.mkdtemp(prefix="lstmcast-pg-", dir="/tmp"))
    base.chmod(0o755)
    (base / "pw").write_text(PASSWORD)
    if as_user:
        os.chown(base, account.pw_uid, account.pw_gid)
        os.chown(base / "pw", account.pw_uid, account.pw_gid)
    data, log = base / "data", base / "server.log"
    env = {**os.environ, "LC_ALL": "C"}

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(binaries / args[0]), *args[1:]],
            cwd=base,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            **as_user,  # type: ignore[arg-type]
        )

    port = free_port()
    try:
        initdb = pg(
            *("initdb", "-D", str(data), "-U", USER, "--pwfile", str(base / "pw")),
            *("--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"),
            "--no-sync",
        )
        assert initdb.returncode == 0, f"initdb failed: {initdb.stdout}{initdb.stderr}"
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = pg(
            "pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"
        )
        if start.returncode != 0:
            text = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"the PostgreSQL server did not start: {start.stderr}{text[-2000:]}")
        import psycopg

        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=USER,
            password=PASSWORD,
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        yield Server(f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}", port)
    finally:
        if (data / "postmaster.pid").exists():
            pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def load(server: Server, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_url(server.url, None))


@pytest.fixture
def tune_args(csv_file, tmp_path, server):
    """The README's command for one worker of study `name`, writing to `out`."""
    config = tmp_path / "tune.toml"
    config.write_text(TOML)

    def args(name: str, out: Path) -> list[str]:
        return [
            *("tune", csv_file, "--trials", "6", "--config", str(config), "-q"),
            *("--storage", server.url, "--study", name, "--out", str(out)),
        ]

    return args


@pytest.fixture
def spawn() -> Iterator[Any]:
    """`lstmcast` in a child process; any still running when the test ends is killed."""
    children: list[subprocess.Popen] = []

    def start(args: list[str], **popen: Any) -> subprocess.Popen:
        children.append(lstmcast(*args, **popen))
        return children[-1]

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait(30)


def pid_of(trial: optuna.trial.FrozenTrial) -> int:
    return int(str(trial.user_attrs["worker"]).rsplit(":", 1)[1])


def test_two_workers_share_one_postgres_study(server, tune_args, spawn, tmp_path):
    outs = [tmp_path / "worker0", tmp_path / "worker1"]
    workers = [spawn(tune_args("shared", out), stdout=subprocess.PIPE) for out in outs]
    for worker in workers:
        stdout, _ = worker.communicate(timeout=180)
        assert worker.returncode == 0 and b"test split" in stdout
    study = load(server, "shared")
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers)))  # distinct, none skipped
    finished = study.get_trials(states=FINISHED)
    assert len(finished) == 6
    # a worker that lost the race for the last slot leaves a failed trial marked surplus
    others = [t for t in study.trials if t.state not in FINISHED]
    assert all(t.state == TrialState.FAIL and t.user_attrs.get("surplus") for t in others)
    assert {pid_of(t) for t in finished} == {w.pid for w in workers}  # both did trials
    for out in outs:
        assert (out / "model.safetensors").is_file()
        summary = (out / "tune.json").read_text()
        assert PASSWORD not in summary and f"{USER}:***@127.0.0.1:{server.port}" in summary


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # the stand-in worker
def test_a_killed_worker_resumes_its_trial_and_leaves_live_ones_alone(
    server, tune_args, spawn, tmp_path
):
    # a worker on another machine, alive (its heartbeat is fresh), in the middle of trial 0
    storage = optuna.storages.RDBStorage(
        storage_url(server.url, None), heartbeat_interval=60, grace_period=180
    )
    live = optuna.create_study(storage=storage, study_name="killed").ask()
    storage.record_heartbeat(live._trial_id)

    a, b = tmp_path / "a", tmp_path / "b"
    first = spawn(tune_args("killed", a))
    other = spawn(tune_args("killed", b))
    killed = wait_for_checkpoint(first, a)
    first.send_signal(signal.SIGKILL)
    assert first.wait(60) == -signal.SIGKILL
    state = load(server, "killed").trials[killed].state
    assert state == TrialState.RUNNING, "the trial ended before its worker was killed"

    # the same --out: its trial is failed at once. Restarted in this process, beside the live
    # child `other` (a child's start would import torch again; nothing here signals it)
    again = CliRunner().invoke(app, tune_args("killed", a))
    assert again.exit_code == 0, again.output
    assert other.wait(180) == 0
    study = load(server, "killed")
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers)))
    assert study.trials[0].state == TrialState.RUNNING  # the live worker's trial is its own
    finished = study.get_trials(states=FINISHED)
    assert len(finished) == 5  # with the live one, the 6 trials asked for; none double
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed if not t.user_attrs.get("surplus")] == [killed]
    assert pid_of(study.trials[killed]) == first.pid
    made_up = [t for t in study.trials if t.user_attrs.get(RESUMES) == killed]
    assert len(made_up) == 1 and made_up[0].state in FINISHED
    assert made_up[0].params == study.trials[killed].params
    assert not any(t.state == TrialState.WAITING for t in study.trials)
    assert other.pid in {pid_of(t) for t in finished}  # the other worker went on meanwhile
    assert (a / "model.safetensors").is_file() and not staging_path(a).exists()


def wait_for_checkpoint(proc: subprocess.Popen, out: Path) -> int:
    """The number of a trial that `proc` is running and has saved its first epoch of."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        saved = sorted(staging_path(out).glob("trials/trial-*/fold-0/state.json"))
        if saved:
            return int(saved[0].parent.parent.name.removeprefix("trial-"))
        time.sleep(0.01)
    pytest.fail("the worker ended (or hung) before any trial saved an epoch")


# ------------------------------------------------------------------------- one-line errors
def one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot open storage"), result.stderr
    assert "Traceback" not in result.output and PASSWORD not in result.output
    return lines[0]


def test_a_server_that_refuses_or_a_wrong_password_is_one_line(server, csv_file, tmp_path):
    args = ["tune", csv_file, "--trials", "1", "--epochs", "1", "-q", "--study", "e"]
    closed = server.url.replace(f":{server.port}/", f":{free_port()}/")
    line = one_line_error([*args, "--storage", closed, "--out", str(tmp_path / "o1")])
    assert "Connection refused" in line and f"{USER}:***@127.0.0.1" in line
    wrong = server.url.replace(PASSWORD, "not-" + PASSWORD[::-1])
    line = one_line_error([*args, "--storage", wrong, "--out", str(tmp_path / "o2")])
    assert "password authentication failed" in line and PASSWORD[::-1] not in line


def test_a_missing_driver_names_the_extra(server, csv_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails, as uninstalled
    args = ["tune", csv_file, "--trials", "1", "--epochs", "1", "-q", "--storage", server.url]
    line = one_line_error([*args, "--out", str(tmp_path / "o")])
    assert "psycopg is not installed" in line and "pip install 'lstmcast[postgres]'" in line


def test_a_bare_postgresql_url_names_the_psycopg_driver():
    assert storage_url("postgresql://u:p@h:5432/db", None) == "postgresql+psycopg://u:p@h:5432/db"
    for url in ("postgresql+psycopg2://u@h/db", "mysql+pymysql://u@h/db", "sqlite:///x.db"):
        assert storage_url(url, None) == url
