"""The CLI in a child process, for the tests that kill it or send it Ctrl-C; and the CLI in
this process computing what such a child computes (one thread), to compare it with; a free
local port for the servers and process groups that children start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch
from typer.testing import CliRunner, Result


def lstmcast(*args: str, **popen) -> subprocess.Popen:
    # Ctrl-C raises KeyboardInterrupt even when this test runs in the background (where the
    # shell starts children with SIGINT ignored)
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from lstmcast.cli import main; sys.argv[0] = 'lstmcast'; main()"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, **popen)


def lstmcast_here(*args: str) -> Result:
    """`lstmcast *args` run in this process on one thread, as `lstmcast(...)` children run
    (OMP_NUM_THREADS=1): the same results bit for bit on the CPU, without a child's start
    (importing torch). The reference run of a test that interrupts children."""
    from lstmcast.cli import app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        torch.set_num_threads(threads)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
