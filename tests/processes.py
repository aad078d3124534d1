"""The CLI in a child process, for the tests that kill it or send it Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys


def lstmcast(*args: str, **popen) -> subprocess.Popen:
    # Ctrl-C raises KeyboardInterrupt even when this test runs in the background (where the
    # shell starts children with SIGINT ignored)
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from lstmcast.cli import main; sys.argv[0] = 'lstmcast'; main()"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, **popen)
