"""`tradewind ingest` and `tradewind data show` end to end, through `pipelines.cli.main`,
in an isolated working directory (the data dir comes from the settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from features.bar_store import BarStore
from pipelines.cli import main
from tests.integration.test_data_alpaca import running
from trading.adapters.paper_exchange.data_api import DataApiConfig, build_data_app
from trading.adapters.sample.data import SampleMarketData

pytestmark = pytest.mark.integration


def run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def show_json(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    capsys.readouterr()
    assert run("data", "show", "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_ingest_sample_then_show(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("ingest", "--source", "sample") == 0
    out = capsys.readouterr().out
    assert "ingested 23,475 1Day bars (23,475 new) of 8 symbol(s) from sample" in out
    assert "repaired 46 row(s)" in out  # VIX's missing days, one line per symbol and reason
    assert out.count("VIX: 46 × dropped") == 1
    assert out.count("VIX") < 10  # the 46 rows in one line, and the 7 jump warnings
    assert "AAPL 2000-09-29T04:00:00+00:00: jump" in out  # few warnings: each listed

    rows = show_json(capsys)
    sample = SampleMarketData().history()
    expected = sample.groupby("symbol")["timestamp"].agg(["count", "min", "max"])
    assert [row["symbol"] for row in rows] == sorted(expected.index)
    for row in rows:
        assert row["timeframe"] == "1Day"
        assert row["bars"] == expected.loc[row["symbol"], "count"]
        assert pd.Timestamp(row["first"]) == expected.loc[row["symbol"], "min"]
        assert pd.Timestamp(row["last"]) == expected.loc[row["symbol"], "max"]
    assert (workdir / "data" / "bars" / "timeframe=1Day" / "symbol=AAPL").is_dir()

    # Re-ingesting an overlapping range adds nothing.
    assert (
        run("ingest", "--source", "sample", "--symbols", "aapl,SPX", "--start", "2010-01-01") == 0
    )
    assert "(0 new)" in capsys.readouterr().out
    assert show_json(capsys) == rows

    # A window without bars says so.
    assert run("ingest", "--source", "sample", "--symbols", "FB", "--end", "2001-01-01") == 0
    assert "no 1Day bars from sample for FB" in capsys.readouterr().out

    # The table form.
    assert run("data", "show") == 0
    table = capsys.readouterr().out
    assert "AAPL" in table
    assert "23,475 bars, 8 symbols" in table

    # Another timeframe: what the store holds instead, and how to load it (not "empty").
    assert run("data", "show", "--timeframe", "1Min") == 0
    hint = capsys.readouterr().out
    assert "no 1Min bars" in hint
    assert "23,475 1Day bars" in hint
    assert "tradewind ingest --timeframe 1Min" in hint
    assert "empty" not in hint

    # --verbose lists every repaired row.
    assert run("ingest", "--source", "sample", "--symbols", "VIX", "--verbose") == 0
    out = capsys.readouterr().out
    assert out.count(": dropped") == 46


def test_data_dir_comes_from_the_settings(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADEWIND_PATHS__DATA_DIR", str(workdir / "elsewhere"))
    assert run("ingest", "--source", "sample", "--symbols", "FB") == 0
    # the sample's index series come along as market context
    assert BarStore(workdir / "elsewhere" / "bars").symbols() == ["COMP", "FB", "SPX", "VIX"]
    assert not (workdir / "data").exists()
    assert [row["symbol"] for row in show_json(capsys)] == ["COMP", "FB", "SPX", "VIX"]


def test_empty_store_says_how_to_fill_it(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("data", "show") == 0
    assert "tradewind ingest --source sample" in capsys.readouterr().out
    assert show_json(capsys) == []


def test_csv_with_bad_rows_needs_repair_and_reports_each(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workdir / "mine.csv"
    path.write_text(
        "symbol,timestamp,open,high,low,close,volume\n"
        "ZZZ,2020-01-02,10,11,9,10.5,100\n"
        "ZZZ,2020-01-03,10,9,11,10,100\n"  # high < low
        "ZZZ,2020-01-06,10,11,9,,100\n"  # no close
        "ZZZ,2020-01-07,10,11,9,10.2,100\n"
    )
    assert run("ingest", "--source", "csv", "--path", str(path)) == 2
    err = capsys.readouterr().err
    assert "mine.csv" in err
    assert "high below low" in err
    assert "--repair" in err
    assert BarStore(workdir / "data" / "bars").symbols() == []

    assert run("ingest", "--source", "csv", "--path", str(path), "--repair") == 0
    out = capsys.readouterr().out
    assert "repaired 2 row(s)" in out
    assert "row 1 ZZZ 2020-01-03T05:00:00+00:00: dropped — high below low" in out
    assert "row 2 ZZZ 2020-01-06T05:00:00+00:00: dropped — missing value (NaN) in close" in out
    assert [row["bars"] for row in show_json(capsys)] == [2]


def test_source_mistakes_are_one_line_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("ingest", "--source", "parquet") == 2
    assert "needs --path" in capsys.readouterr().err
    assert run("ingest", "--source", "ftp") == 2
    assert "unknown market-data source" in capsys.readouterr().err
    assert run("ingest", "--source", "sample", "--timeframe", "1Min") == 2
    assert "daily only" in capsys.readouterr().err
    assert run("ingest", "--source", "alpaca", "--symbols", "AAPL") == 2
    assert "ALPACA_API_KEY" in capsys.readouterr().err
    assert run("ingest", "--source", "alpaca", "--feed", "nasdaq") == 2
    assert "feed" in capsys.readouterr().err


def test_ingest_from_alpaca_through_the_local_server(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = SampleMarketData().history(["MSFT", "GOOG"], start="2012-01-01")
    app = build_data_app(source, DataApiConfig(max_page_size=100))
    monkeypatch.setenv("ALPACA_API_KEY", "cli-key")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "cli-secret-value")
    with running(app) as url:
        code = run(
            "ingest", "--source", "alpaca", "--symbols", "MSFT,GOOG",
            "--start", "2012-01-01", "--end", "2013-12-31", "--data-url", url,
            "--feed", "sip", "--adjustment", "split",
        )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "cli-secret-value" not in out
    assert len(app.state.requests) > 5  # several pages
    assert app.state.requests[0]["feed"] == "sip"
    assert app.state.requests[0]["adjustment"] == "split"
    stored = BarStore(workdir / "data" / "bars").read()
    pd.testing.assert_frame_equal(stored, source)
