"""The C++ layer is built once per environment and source version (lstmcast.kernels.cpu_lstm):
every checkout with the same source shares one build. Checked without compiling: torch's
loader is replaced by one that records what it was asked to build."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch.utils.cpp_extension

from lstmcast.kernels import activations, cpu_lstm

CODES_FLAGS = activations.cpp_defines()


@pytest.fixture
def builds(monkeypatch, tmp_path) -> list[dict]:
    """What each build asked torch for, built under tmp_path/extensions."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "extensions"))
    calls: list[dict] = []

    def record(name, sources, extra_cflags, extra_ldflags, build_directory, verbose):
        calls.append(
            dict(
                name=name,
                sources=sources,
                cflags=extra_cflags,
                ldflags=extra_ldflags,
                build_directory=build_directory,
            )
        )
        return ModuleType(name)

    monkeypatch.setattr(torch.utils.cpp_extension, "load", record)
    return calls


def checkout(root: Path, code: bytes) -> Path:
    """A checkout at `root` whose cpu_lstm.cpp holds `code`."""
    path = root / "src" / "lstmcast" / "kernels" / "cpu_lstm.cpp"
    path.parent.mkdir(parents=True)
    path.write_bytes(code)
    return path


def test_two_checkouts_with_the_same_source_share_one_build(tmp_path, builds):
    code = cpu_lstm.SOURCE.read_bytes()
    cpu_lstm.build(checkout(tmp_path / "a", code))
    cpu_lstm.build(checkout(tmp_path / "b", code))
    first, second = builds
    assert first == second  # name, build folder, source path and flags: nothing to rebuild
    folder = Path(first["build_directory"])
    assert folder == tmp_path / "extensions" / first["name"]
    assert first["sources"] == [str(folder / "cpu_lstm.cpp")]
    assert (folder / "cpu_lstm.cpp").read_bytes() == code
    assert first["cflags"][-len(CODES_FLAGS) :] == CODES_FLAGS


def test_an_unchanged_source_is_not_rewritten(tmp_path, builds):
    code = cpu_lstm.SOURCE.read_bytes()
    cpu_lstm.build(checkout(tmp_path / "a", code))
    copy = Path(builds[0]["sources"][0])
    before = copy.stat()
    cpu_lstm.build(checkout(tmp_path / "b", code))
    after = copy.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_changed_source_is_another_build(tmp_path, builds):
    code = cpu_lstm.SOURCE.read_bytes()
    cpu_lstm.build(checkout(tmp_path / "a", code))
    cpu_lstm.build(checkout(tmp_path / "b", code + b"\n// changed\n"))
    first, second = builds
    assert first["name"] != second["name"]
    assert first["build_directory"] != second["build_directory"]
    assert Path(first["sources"][0]).read_bytes() == code  # the first build's copy is intact


def test_another_environment_or_code_table_is_another_build(tmp_path, builds, monkeypatch):
    source = checkout(tmp_path / "a", cpu_lstm.SOURCE.read_bytes())
    cpu_lstm.build(source)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "other-venv"))
    cpu_lstm.build(source)
    monkeypatch.setitem(activations.CODES, "tanh", 7)
    cpu_lstm.build(source)
    assert len({call["name"] for call in builds}) == 3


def test_a_failed_build_warns_and_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "extensions"))

    def fail(name, sources, extra_cflags, extra_ldflags, build_directory, verbose):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", fail)
    with pytest.warns(RuntimeWarning, match="could not be built.*no compiler"):
        assert cpu_lstm.try_build(checkout(tmp_path / "a", b"")) is None
