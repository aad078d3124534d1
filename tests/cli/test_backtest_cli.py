"""`lstmcast backtest` end to end: the table, the files, resume, bad input."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from lstmcast.cli import app

runner = CliRunner()
FLAGS = [
    "--model",
    "lstm",
    "--lookback",
    "12",
    "--horizon",
    "2",
    "--epochs",
    "1",
    "--layers",
    "4",
    "--folds",
    "3",
    "--refit",
    "2",
]


def test_backtest_end_to_end_and_resume(csv_file, tmp_path):
    out = tmp_path / "bt"
    result = runner.invoke(app, ["backtest", csv_file, *FLAGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "backtest of lstm: 3 folds" in result.output and "mean ± std" in result.output
    assert "at the 5% level on squared errors" in result.output
    assert "fold 2/3 (model of fold 1)" in result.output
    report = json.loads((out / "backtest.json").read_text())
    assert [f["trained"] for f in report["folds"]] == [True, False, True]
    again = runner.invoke(app, ["backtest", csv_file, *FLAGS, "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    assert "fold 1/3 (resumed)" in again.output


def test_bad_backtest_options_give_one_line_and_exit_code_2(csv_file, tmp_path):
    for extra, message in (
        (["--folds", "500"], "--folds 500 needs at least 500 forecast origins"),
        (["--window", "sliding", "--train-rows", "5"], "--train-rows 5 is shorter"),
        (["--gap", "-2"], "'gap' parameter must be an int >= 0"),
        (["--window", "rolling"], "'window' parameter must be one of expanding, sliding"),
        (
            ["--val-start", "2024-01-05", "--test-start", "2024-01-08"],
            "--val-start (one date for one split) does not apply",
        ),
        (["--memmap", "--transform", "load=log"], "--memmap does not take --transform"),
    ):
        result = runner.invoke(app, ["backtest", csv_file, *FLAGS, "--out", str(tmp_path), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output.replace("\n", " "), result.output


def test_backtest_with_a_transform_and_intervals_scores_levels(csv_file, tmp_path):
    """--transform log with intervals: the table says the levels were rebuilt, coverage is of
    the bands mapped into levels."""
    out = tmp_path / "bt"
    flags = [*FLAGS, "--transform", "load=log", "--intervals", "0.8", "--out", str(out)]
    result = runner.invoke(app, ["backtest", csv_file, *flags])
    assert result.exit_code == 0, result.output
    assert "levels rebuilt from the trained transform" in result.output.replace("\n", " ")
    report = json.loads((out / "backtest.json").read_text())
    assert report["transform"]["load"] == "log"
    for fold in report["folds"]:
        assert 0 <= fold["intervals"]["80%"]["coverage"] <= 1
        assert "metrics_trained" in fold
    differenced = runner.invoke(
        app, ["backtest", csv_file, *FLAGS, "--transform", "load=diff", "--intervals", "0.8"]
    )
    assert differenced.exit_code == 2, differenced.output
    assert "Prediction intervals with --transform" in differenced.output


def test_backtest_of_a_long_table_end_to_end_and_resume(tmp_path):
    from lstmcast.datasets.synthetic import synthetic_panel

    data = tmp_path / "panel.csv"
    synthetic_panel(n_series=4, n_rows=150, seed=2, freq="D").to_csv(data, index=False)
    out = tmp_path / "bt"
    flags = [*FLAGS, "--id-col", "id", "--targets", "sales", "--out", str(out)]
    result = runner.invoke(app, ["backtest", str(data), *flags])
    assert result.exit_code == 0, result.output
    assert "backtest of lstm: 3 folds" in result.output
    report = json.loads((out / "backtest.json").read_text())
    assert all(1 <= f["n_series"] <= 4 for f in report["folds"])  # staggered series
    assert report["diebold_mariano"]["squared"]["n"] < report["n_origins"]  # one per time
    import pandas as pd

    table = pd.read_csv(out / "backtest_forecasts.csv")
    assert list(table.columns[:3]) == ["fold", "id", "origin"]
    assert set(table["id"]) == {f"s{i:04d}" for i in range(4)}
    # daily data: origins are dates in the report, the table and the terminal, as in the file
    first = report["folds"][0]["first_origin"]
    assert first == min(table.loc[table["fold"] == 1, "origin"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", first) and first in result.output
    again = runner.invoke(app, ["backtest", str(data), *flags])
    assert again.exit_code == 0, again.output
    assert "fold 3/3 (resumed)" in again.output
