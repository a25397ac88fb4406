"""One option vocabulary across `tradewind` (issue 16): symbols as comma lists and repeated
flags that add up, the same sources, `--flag/--no-flag`, `-h`, `--version`, help that
reads at 80 columns, and the corrected behaviours the newcomer's walk found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings
from pipelines.commands.options import parse_day, parse_symbols
from pipelines.deployments import SCHEDULES, flow_parameters, load_flow
from tests.unit.pipelines.cli_runner import run_cli


def test_symbols_from_comma_lists_and_repeated_flags_add_up() -> None:
    assert parse_symbols(["aapl,MSFT", "IBM", " msft ,"]) == ["AAPL", "MSFT", "IBM"]
    assert parse_symbols(None) == []
    with pytest.raises(ConfigError, match="not a ticker"):
        parse_symbols(["AAPL;MSFT"])


def test_dates_are_checked_with_the_option_named() -> None:
    assert parse_day("2013-05-02", "--start") == "2013-05-02"
    assert parse_day("2013-05-02T20:00:00Z", "--as-of") == "2013-05-02T20:00:00Z"
    with pytest.raises(ConfigError, match="--as-of 'notadate'"):
        parse_day("notadate", "--as-of")


def test_version_and_short_help(workdir: Path) -> None:
    version = run_cli("--version")
    assert version.code == 0
    assert version.stdout.startswith("tradewind ")
    for argv in (["-h"], ["backtest", "-h"], ["data", "-h"], ["models", "list", "-h"]):
        shown = run_cli(*argv)
        assert shown.code == 0, argv
        assert "Usage: tradewind" in shown.stdout


def test_help_reads_at_80_columns(workdir: Path) -> None:
    """No command summary cut with `...`, no option name cut with `…`."""
    listing = run_cli("-h", env={"COLUMNS": "80"})
    commands = listing.stdout.split("Commands:", 1)[1]
    assert "ingest " in commands
    assert "..." not in commands
    assert "…" not in listing.stdout
    assert max(len(line) for line in listing.stdout.splitlines()) <= 80
    for command in ("ingest", "backtest", "optimize", "paper-exchange", "trade", "deploy"):
        page = run_cli(command, "-h", env={"COLUMNS": "80"}).stdout
        assert "…" not in page, command
        assert "<bool>" not in page, command
    assert "--quick / --full" in run_cli("demo", "-h").stdout
    assert "--fresh / --no-fresh" in run_cli("paper-exchange", "-h").stdout


def test_backtest_keeps_every_repeated_symbol(workdir: Path) -> None:
    out = workdir / "backtest.json"
    outcome = run_cli("backtest", "--source", "sample", "--symbols", "AAPL", "--symbols", "MSFT",
                      "--start",
                      "2011-01-01", "--end", "2011-06-30", "--json", str(out))
    assert outcome.code == 0, outcome.stderr
    assert json.loads(out.read_text())["symbols"] == 2


def test_backtest_and_features_read_the_store_ingest_fills(workdir: Path) -> None:
    assert run_cli("ingest", "--source", "sample", "--symbols", "AAPL",
                   "--start", "2010-01-01", "--end", "2011-12-31").code == 0
    backtest = run_cli("backtest", "--source", "store", "--json", "store.json")
    assert backtest.code == 0, backtest.stderr
    metrics = json.loads((workdir / "store.json").read_text())
    assert metrics["symbols"] == 1
    assert metrics["start"][:4] == "2010"
    computed = run_cli("features", "compute", "--input", "data/bars", "--output", "f.parquet")
    assert computed.code == 0, computed.stderr
    assert "for 1 symbols" in computed.stdout
    assert "no index series" not in computed.stdout  # the sample's index came along


def test_train_accepts_the_same_symbols_option(workdir: Path) -> None:
    """`--symbols A,B` (and the old `--symbol A --symbol B`) reach the same parser: a bad
    ticker is refused by it before any data is read."""
    for argv in (["--symbols", "AAPL,M$FT"], ["--symbol", "AAPL", "--symbol", "M$FT"]):
        outcome = run_cli("train", *argv)
        assert outcome.code == 2
        assert "'M$FT' is not a ticker" in outcome.error_lines[0]


def test_data_show_names_what_the_store_holds(workdir: Path) -> None:
    assert run_cli("ingest", "--source", "sample", "--symbols", "IBM", "--start",
                   "2012-01-01").code == 0
    shown = run_cli("data", "show", "--timeframe", "1Min")
    assert shown.code == 0
    assert "no 1Min bars" in shown.stdout
    assert "1Day bars" in shown.stdout
    assert "is empty" not in shown.stdout


def test_deployments_run_on_the_users_data(workdir: Path) -> None:
    (workdir / "tradewind.yaml").write_text(
        "symbols: [AAPL, MSFT]\ndata:\n  source: parquet\n  path: bars/\n", encoding="utf-8"
    )
    settings = load_settings()
    flows = {spec.flow: (spec, load_flow(spec)) for spec in SCHEDULES}
    chosen = {
        name: flow_parameters(set(flow.parameters.properties), settings,
                              scheduled=spec.scheduled)
        for name, (spec, flow) in flows.items()
    }
    assert chosen["ingest"] == {"source": "parquet", "path": "bars", "symbols": ["AAPL", "MSFT"],
                                "timeframe": "1Day"}
    assert chosen["retrain"] == {"source": "parquet", "symbols": ["AAPL", "MSFT"]}
    assert chosen["train"] == {"source": "parquet", "symbols": ["AAPL", "MSFT"]}
    assert chosen["monitor"] == {"symbols": ["AAPL", "MSFT"], "timeframe": "1Day",
                                 "market_days_only": True}
    assert chosen["evaluate_ab"] == {"market_days_only": True}


def test_doctor_says_what_to_do_next(workdir: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port where no model service answers
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    outcome = run_cli("doctor", "--timeout", "0.5", env={"TRADEWIND_SERVING__PORT": port})
    assert outcome.code == 0, outcome.stdout
    lines = {line.split()[1]: line for line in outcome.stdout.splitlines()[:-1]}
    assert lines["settings"].startswith("ok")
    assert lines["bar"].startswith("todo")
    assert "tradewind ingest --source sample" in lines["bar"]
    assert "tradewind serve" in lines["model"]

    (workdir / "tradewind.yaml").write_text("- not settings\n", encoding="utf-8")
    broken = run_cli("doctor")
    assert broken.code == 1
    assert broken.stdout.startswith("fail settings")
