"""The `lstmcast` command line: `app` (the Typer commands) and `options` (the run options
every training command shares)."""

from lstmcast.cli.app import app, main

__all__ = ["app", "main"]
