"""Writing files without losing them: every file lstmcast writes goes to a temporary file
beside its destination and is renamed over it, so a crash leaves the old file or the new one,
never half of one. Also the library versions recorded beside every result."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any


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
