"""Writing files without losing them: every file lstmcast writes goes to a temporary file
beside its destination and is renamed over it, so a crash leaves the old file or the new one,
never half of one. A run directory is one unit (`staged_directory`): assembled aside under a
lock and swapped in whole. Also the library versions recorded beside every result."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lstmcast.errors import ConfigError


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, content: Any) -> None:
    atomic_write(path, (json.dumps(content, indent=2, allow_nan=False) + "\n").encode())


def check_output_dir(path: Path, option: str = "--out") -> None:
    """ConfigError, before any work, when `path` cannot become a directory."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file; name a directory")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is None or not os.access(parent, os.W_OK):
        raise ConfigError(f"{option} {path}: cannot write under {parent}")


def check_output_file(path: Path, option: str = "--out") -> None:
    """ConfigError, before any work, when `path` cannot be written as a file."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a directory; name a file")


def staging_path(out: Path) -> Path:
    """Where the run that will become `out` is assembled (and its checkpoint kept)."""
    return out.parent / f".{out.name}.partial"


@contextlib.contextmanager
def staged_directory(
    out: Path, *, resume: bool | None = False, carry: Sequence[str] = ()
) -> Iterator[Path]:
    """A directory to write a whole run into, swapped in at `out` when the block ends.

    One writer at a time: a lock beside `out` is held throughout (a second process gets a
    ConfigError naming the holder; a dead holder's lock is released by the OS). The run is
    built in `.<name>.partial` beside `out`, so a reader sees the old run or the new one,
    never a mix, and no file of an earlier run survives. On an error or a kill the partial
    directory stays, with its checkpoints. `resume`: False starts it afresh, True requires
    it, None goes on with it when there is one (tune and backtest, which resume by nature).
    `carry`: files of `out` (relative paths) that live on in the new run, e.g. a study's
    database; they are hard-linked across, so they are never copied or briefly missing."""
    from filelock import FileLock, Timeout

    check_output_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out.parent / f".{out.name}.lock"))
    holder = out.parent / f".{out.name}.lock.owner"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        who = holder.read_text().strip() if holder.is_file() else "another process"
        raise ConfigError(
            f"--out {out} is being written by {who}; wait for it or pick another --out"
        ) from None
    try:
        holder.write_text(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        staging = staging_path(out)
        if resume is False and staging.exists():
            shutil.rmtree(staging)
        if resume is True and not staging.is_dir():
            raise ConfigError(f"--resume: nothing to resume for {out} (no {staging.name})")
        staging.mkdir(exist_ok=True)
        yield staging
        for name in carry:
            _link_into(out / name, staging / name)
        swap_in(staging, out)
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _link_into(source: Path, target: Path) -> None:
    if not source.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links: a copy, made atomically
        atomic_write(target, source.read_bytes())


def swap_in(staging: Path, out: Path) -> None:
    """Put the directory `staging` at `out`, removing what was there. Where the OS can
    exchange two paths in one step (Linux renameat2), `out` never stops existing; elsewhere
    there is a moment between two renames when it is absent."""
    if out.exists() and _exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # it now holds the old run
        return
    old = out.parent / f".{out.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2(RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc without it (musl before 1.2.2, old glibc)
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(
        at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), ctypes.c_uint(rename_exchange)
    )
    return bool(done == 0)


def versions() -> dict[str, str]:
    """The versions a result was made with (written into every model and run file)."""
    import numpy
    import pandas
    import torch

    from lstmcast.version import __version__

    return {
        "lstmcast": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "python": platform.python_version(),
    }
