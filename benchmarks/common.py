"""What the benchmark scripts share: the machine line, the commit measured, peak RSS, and one
measurement per subprocess (so each one's peak memory and warm-up are its own)."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any


def machine() -> str:
    import torch

    from lstmcast.version import __version__

    return (
        f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"lstmcast {__version__}"
    )


def commit() -> str:
    """The commit of the lstmcast that is imported, with '+dirty' when its src/ differs from
    it; for a copy outside git (e.g. a snapshot on PYTHONPATH), the first line of the file
    PROVENANCE beside its src/."""
    import lstmcast

    root = Path(lstmcast.__file__).resolve().parents[2]
    if (root / "PROVENANCE").is_file():
        return (root / "PROVENANCE").read_text().strip().splitlines()[0]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "src"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_in_subprocess(script: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run `script --one SPEC` and return the last JSON line it printed (or the error)."""
    try:
        proc = subprocess.run(
            [sys.executable, script, "--one", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timeout after {timeout:.0f}s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {**spec, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:160]}
    return json.loads(lines[-1])


def write_section(path: Path, body: str, start: str, end: str, heading: str = "") -> None:
    """Replace what lies between the `start` and `end` markers of a results page with `body`,
    keeping the text around them; a page without the markers gets them at its end (under
    `heading`), a missing page is created."""
    text = path.read_text() if path.is_file() else "# Accuracy\n"
    if start not in text or end not in text:
        text = text.rstrip() + (f"\n\n{heading}" if heading else "") + f"\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{start}\n{body}\n{end}{tail}")
