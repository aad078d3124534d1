"""The command line on a real long-format panel: ../shared/data/stocks_monthly.csv (5 tickers,
unequal lengths)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from lstmcast.cli import app

STOCKS = Path(__file__).parents[3] / "shared" / "data" / "stocks_monthly.csv"
pytestmark = pytest.mark.skipif(not STOCKS.is_file(), reason=f"shared data absent: {STOCKS}")
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_train_evaluate_predict_on_a_long_table(tmp_path):
    run = tmp_path / "run"
    common = ["--lookback", "12", "--horizon", "3", "--epochs", "2", "--layers", "8", "-q"]
    result = invoke(
        "train",
        STOCKS,
        "--model",
        "lstm",
        "--id-col",
        "symbol",
        "--calendar",
        "auto",
        "--id-embedding",
        "3",
        "--out",
        run,
        *common,
    )
    assert result.exit_code == 0, result.output
    assert "per series (5" in result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["per_series"]) == {"MSFT", "AMZN", "IBM", "GOOG", "AAPL"}
    beaten = sum(s["beats_best_baseline"] for s in metrics["per_series"].values())
    assert f"beats its best simple baseline on {beaten} of 5 series" in result.output
    for section in metrics["per_series"].values():  # the table's "its MSE" is in the file
        assert section["best_baseline"] in section and "mse" in section["mean"]["scaled"]
    table = pd.read_csv(run / "forecast_test.csv")
    assert list(table.columns[:3]) == ["symbol", "origin", "time"]
    assert set(table["symbol"]) == set(metrics["per_series"])

    result = invoke("evaluate", run, STOCKS, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["per_series"]["GOOG"]["n_windows"] > 0

    out = tmp_path / "future.csv"
    result = invoke("predict", run, STOCKS, "--ids", "AAPL,IBM", "--out", out)
    assert result.exit_code == 0, result.output
    future = pd.read_csv(out)
    assert list(future.columns) == ["symbol", "date", "price"]
    assert list(future["symbol"]) == ["AAPL"] * 3 + ["IBM"] * 3

    result = invoke("predict", run, STOCKS, "--ids", "TSLA")
    assert result.exit_code == 2 and "no series 'TSLA'" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--id-col", "ticker"], "unknown column 'ticker' in --id-col"),
        (["--static", "symbol"], "'static' option needs 'id_col'"),
        (
            ["--id-col", "symbol", "--static", "date"],
            "static column 'date' is not constant in series 'MSFT'",
        ),
        (["--id-col", "symbol", "--calendar", "weekday"], "'calendar' option"),
        (["--id-col", "symbol", "--holidays", "XX"], "'holidays' option"),
        (["--id-col", "symbol", "--lookback", "200"], "no series is long enough"),
    ],
)
def test_bad_panel_options_give_one_line_and_exit_code_2(tmp_path, extra, message):
    result = invoke("train", STOCKS, "--epochs", "1", "--out", tmp_path / "r", "-q", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", " ")


def test_predict_takes_known_future_values_from_a_file(tmp_path):
    from lstmcast.datasets.synthetic import synthetic_panel

    frame = synthetic_panel(n_series=3, n_rows=80, seed=1)
    data = tmp_path / "panel.csv"
    frame.to_csv(data, index=False)
    run = tmp_path / "run"
    result = invoke(
        "train",
        data,
        "--id-col",
        "id",
        "--targets",
        "sales",
        "--future-covariates",
        "promo",
        "--static",
        "region",
        "--lookback",
        "8",
        "--horizon",
        "2",
        "--epochs",
        "1",
        "--model",
        "lstm",
        "--layers",
        "4",
        "--out",
        run,
        "-q",
    )
    assert result.exit_code == 0, result.output
    result = invoke("predict", run, data)
    assert result.exit_code == 2 and "known-future covariate 'promo'" in result.output
    last = frame.groupby("id")["time"].max()
    ahead = pd.DataFrame(
        [
            {"id": i, "time": t + pd.Timedelta(hours=k), "promo": 1.0}
            for i, t in last.items()
            for k in (1, 2)
        ]
    )
    ahead.to_csv(tmp_path / "future.csv", index=False)
    out = tmp_path / "forecast.csv"
    result = invoke("predict", run, data, "--future", tmp_path / "future.csv", "--out", out)
    assert result.exit_code == 0, result.output
    forecast = pd.read_csv(out)
    assert list(forecast.columns) == ["id", "time", "sales"] and len(forecast) == 6


def test_tune_says_it_takes_no_long_tables_yet(tmp_path):
    result = invoke("tune", STOCKS, "--id-col", "symbol", "--trials", "1", "--out", tmp_path)
    assert result.exit_code == 2 and "not supported by tune yet" in result.output


SP500 = STOCKS.parent / "sp500.csv"
CPI = STOCKS.parent / "core_cpi.csv"


def test_daily_index_levels_with_cpi_as_a_macro_input(tmp_path):
    run = tmp_path / "sp"
    result = invoke(
        "train",
        SP500,
        "--targets",
        "Close",
        "--model",
        "linear",
        "--lookback",
        "10",
        "--horizon",
        "3",
        "--epochs",
        "1",
        "--macro",
        CPI,
        "--release-lag",
        "45D",
        "--exchange",
        "XNYS",
        "--out",
        run,
        "-q",
    )
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["columns"]["covariates"] == ["CPILFESL"] and config["frequency"] == "B"
    out = tmp_path / "f.csv"
    result = invoke("predict", run, SP500, "--out", out)
    assert result.exit_code == 0, result.output
    # 2018-12-31 is a Monday; New Year's Day is an NYSE holiday
    assert list(pd.read_csv(out)["Date"]) == ["2019-01-02", "2019-01-03", "2019-01-04"]
    result = invoke("train", SP500, "--targets", "Close", "--macro", SP500, "--out", run, "-q")
    assert result.exit_code == 2 and "is also a column of the data" in result.output
