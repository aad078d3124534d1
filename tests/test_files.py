"""Files written whole: atomic writes, and run directories swapped in at once."""

from __future__ import annotations

import sys
import threading

import pytest

from lstmcast.files import _exchange, atomic_write, staged_directory, swap_in


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    atomic_write(tmp_path / "a" / "f.txt", b"one")
    atomic_write(tmp_path / "a" / "f.txt", b"two")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.txt"]
    assert (tmp_path / "a" / "f.txt").read_bytes() == b"two"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_a_swapped_directory_never_stops_existing(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "n").write_text("0")
    missing, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            if not (out / "n").exists():
                missing.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for k in range(1, 300):
            staging = tmp_path / ".run.partial"
            staging.mkdir()
            (staging / "n").write_text(str(k))
            swap_in(staging, out)
    finally:
        stop.set()
        thread.join()
    assert missing == [] and (out / "n").read_text() == "299"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_without_an_exchange_the_swap_still_replaces_the_whole_directory(tmp_path, monkeypatch):
    monkeypatch.setattr("lstmcast.files._exchange", lambda a, b: False)
    out = tmp_path / "run"
    out.mkdir()
    (out / "stale").write_text("of an earlier run")
    with staged_directory(out) as staging:
        (staging / "new").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == ["new"]


def test_carried_files_live_on_in_the_new_run_as_the_same_file(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "study.db").write_text("the study")
    (out / "stale").write_text("of an earlier run")
    before = (out / "study.db").stat().st_ino
    with staged_directory(out, carry=("study.db", "study.db-journal")) as staging:
        (staging / "model").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == ["model", "study.db"]
    assert (out / "study.db").stat().st_ino == before  # linked, not copied


def test_exchange_swaps_two_directories(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    if not _exchange(a, b):
        pytest.skip("this file system or libc cannot exchange paths")
    assert (b / "x").read_text() == "a" and not (a / "x").exists()
