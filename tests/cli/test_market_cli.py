"""The command line on the two daily index files of ../shared/data (US trading days) as a
two-ticker panel, trained on log-returns with the monthly core CPI as a macro input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from lstmcast.cli import app

DATA = Path(__file__).parents[3] / "shared" / "data"
FILES = {"SP500": DATA / "sp500.csv", "NASDAQ": DATA / "nasdaq.csv"}
CPI = DATA / "core_cpi.csv"
pytestmark = pytest.mark.skipif(
    not all(p.is_file() for p in [*FILES.values(), CPI]), reason=f"shared data absent: {DATA}"
)
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> Path:
    """The last 300 trading days of each index, in long format."""
    frames = []
    for ticker, path in FILES.items():
        frame = pd.read_csv(path)[["Date", "Close", "Volume"]].tail(300)
        frames.append(frame.assign(ticker=ticker))
    out = tmp_path_factory.mktemp("market") / "indices.csv"
    pd.concat(frames).to_csv(out, index=False)
    return out


def test_log_returns_with_cpi_end_to_end(panel, tmp_path):
    run = tmp_path / "run"
    result = invoke(
        "train", panel, "--id-col", "ticker", "--targets", "Close", "--model", "simple",
        "--transform", "log-returns", "--macro", CPI, "--release-lag", "45D",
        "--exchange", "XNYS", "--cost-bps", "5", "--lookback", "10", "--epochs", "2",
        "--out", run, "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "market measures" in result.output and "not investment advice" in result.output
    assert "in the trained space (Close=log-returns)" in result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["transform"] == {"Close": "log-returns"}
    assert set(metrics["per_series"]) == set(FILES)
    assert metrics["market"]["trading"]["cost_bps"] == 5
    assert metrics["market"]["trading"]["periods_per_year"] == 252
    assert set(metrics["market"]["trading"]["per_variable"]["Close"]["per_series"]) == set(FILES)
    table = pd.read_csv(run / "forecast_test.csv")
    sp = table[table.ticker == "SP500"]
    assert sp.actual.between(2000, 3500).all()  # index levels, not returns
    assert sp.actual_transformed.abs().max() < 0.1  # daily log-returns

    out = tmp_path / "future.csv"
    result = invoke("predict", run, panel, "--out", out)
    assert result.exit_code == 0, result.output
    future = pd.read_csv(out, parse_dates=["Date"])
    # the files end on Monday 2018-12-31; Tuesday 2019-01-01 is New Year's Day on the NYSE
    assert list(future.Date.dt.strftime("%Y-%m-%d").unique()) == ["2019-01-02"]
    assert future.Close.between(1000, 10000).all()


def test_market_inputs_that_cannot_work_are_named(panel, tmp_path):
    base = ["train", panel, "--id-col", "ticker", "--epochs", "1", "-q"]
    zero = pd.read_csv(panel)
    zero.loc[5, "Volume"] = 0
    zero_file = tmp_path / "zero.csv"
    zero.to_csv(zero_file, index=False)
    no_time = tmp_path / "no_time.csv"
    pd.read_csv(CPI).rename(columns={"Date": "when"}).assign(when="x").to_csv(no_time)
    late = tmp_path / "late.csv"
    pd.DataFrame({"Date": ["2030-01-01"], "CPI": [300.0]}).to_csv(late, index=False)
    cases = [
        (["train", zero_file, "--id-col", "ticker", "--transform", "Volume=log"],
         "column 'Volume' of series 'SP500' has the value 0"),
        ([*base, "--exchange", "XXXX"], "XXXX"),
        ([*base, "--macro", no_time], "no_time.csv"),
        ([*base, "--macro", late], "after the data ends"),
        ([*base, "--transform", "Open=log"], "'Open', which is not a target"),
    ]  # fmt: skip
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
