"""The command line on generated malformed tables: `predict` with a trained model, 200 tables
per run. Every outcome is a forecast of finite numbers with exit 0, or one line with exit 2;
never a traceback."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import tables  # the data boundary's generator of bad tables
from typer.testing import CliRunner

from lstmcast.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from conftest import make_frame

    root = tmp_path_factory.mktemp("fuzz")
    data = root / "train.csv"
    make_frame(120)[["load", "temp"]].to_csv(data, index=False)
    out = root / "run"
    result = runner.invoke(
        app, ["train", str(data), "--model", "linear", "--lookback", "3", "--epochs", "2",
              "--out", str(out), "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=tables())
def test_predict_on_malformed_tables_never_tracebacks(run_dir, tmp_path_factory, table):
    content, suffix = table
    path = tmp_path_factory.mktemp("t") / f"data{suffix}"
    path.write_bytes(content)
    result = runner.invoke(app, ["predict", str(run_dir), str(path)])
    assert result.exit_code in (0, 2), result.output
    assert not isinstance(result.exception, Exception) or result.exit_code == 2, result.exception
    if result.exit_code == 2:
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    else:
        rows = [line.split(",") for line in result.stdout.strip().splitlines()[1:]]
        values = [float(cell) for row in rows for cell in row[1:]]
        assert values and all(math.isfinite(v) for v in values), result.stdout
