"""Every common mistake on the command line ends in exactly one `error:` line on stderr,
exit code 2 and no traceback, before anything is read heavily, deleted or written (issue
16). Each row: the arguments, settings files or environment, and a fragment the one line
must contain (what is wrong, or what to do)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.pipelines.cli_runner import run_cli

BROKEN_YAML = "risk:\n  max_position_pct: [0.1\nmodels: {}\n"
LIST_YAML = "- risk\n- models\n"

# (id, argv, files to write in the working directory, environment, expected fragment)
MISTAKES: list[tuple[str, list[str], dict[str, str], dict[str, str], str]] = [
    ("unknown command", ["nosuch"], {}, {}, "No such command"),
    ("unknown option", ["backtest", "--nosuch"], {}, {}, "No such option"),
    ("bool given a value", ["demo", "--quick", "true"], {}, {}, "--no-name"),
    ("missing required option", ["features", "compute", "--input", "x.parquet"], {}, {},
     "--output"),
    ("option without its value", ["backtest", "--start", "2010-01-01", "--journal"], {}, {},
     "tradewind backtest: Option '--journal' requires an argument"),
    ("not a number", ["serve", "--port", "many"], {}, {}, "Invalid value for '--port'"),
    ("broken tradewind.yaml", ["data", "show"], {"tradewind.yaml": BROKEN_YAML}, {},
     "not valid YAML at line"),
    ("tradewind.yaml is a list", ["data", "show"], {"tradewind.yaml": LIST_YAML}, {},
     "not settings"),
    ("unknown setting", ["data", "show"], {"tradewind.yaml": "riks:\n  x: 1\n"}, {},
     "unknown setting 'riks'"),
    ("setting out of range", ["data", "show"], {},
     {"TRADEWIND_RISK__MAX_POSITION_PCT": "2"}, "risk.max_position_pct"),
    ("missing config file", ["data", "show"], {}, {"TRADEWIND_CONFIG": "nowhere.yaml"},
     "does not exist"),
    ("files source without a path", ["data", "show"],
     {"tradewind.yaml": "data:\n  source: parquet\n"}, {}, "needs data.path"),
    ("monitor --as-of notadate", ["monitor", "--as-of", "notadate"], {}, {}, "YYYY-MM-DD"),
    ("monitor --window-days 0", ["monitor", "--window-days", "0"], {}, {}, "at least 1"),
    ("evaluate-ab --as-of bad", ["evaluate-ab", "--as-of", "yesterday"], {}, {}, "YYYY-MM-DD"),
    ("evaluate-ab --alpha 2", ["evaluate-ab", "--alpha", "2"], {}, {}, "between 0 and 1"),
    ("optimize --strategy foo", ["optimize", "--strategy", "foo"], {}, {}, "momentum"),
    ("optimize --trials 0", ["optimize", "--trials", "0"], {}, {}, "at least 1"),
    ("paper-exchange --speed -1", ["paper-exchange", "--speed", "-1"], {}, {},
     "0 or more"),
    ("paper-exchange --start bad", ["paper-exchange", "--start", "2012-31-01"], {}, {},
     "--start"),
    ("paper-exchange on an empty store", ["paper-exchange", "--port", "0"], {}, {},
     "tradewind ingest"),
    ("demo --symbols unknown", ["demo", "--symbols", "AAPL,ZZZZ"], {}, {}, "ZZZZ"),
    ("demo --symbols outside the window", ["demo", "--quick", "--symbols", "DXC"], {}, {},
     "trading window 2016-01-01 → 2016-12-31"),
    ("demo --symbols not a ticker", ["demo", "--symbols", "AA PL"], {}, {}, "not a ticker"),
    ("backtest --source foo", ["backtest", "--source", "foo"], {}, {}, "store"),
    ("backtest --source parquet without --path", ["backtest", "--source", "parquet"], {}, {},
     "--path"),
    ("backtest --strategy foo", ["backtest", "--strategy", "foo"], {}, {}, "momentum"),
    ("backtest --start not a date", ["backtest", "--start", "2010-13-01"], {}, {},
     "YYYY-MM-DD"),
    ("backtest --source store when empty", ["backtest", "--source", "store"], {}, {},
     "tradewind ingest"),
    ("backtest unknown symbol", ["backtest", "--symbols", "ZZZZ"], {}, {}, "ZZZZ"),
    ("ingest --timeframe 2Min", ["ingest", "--timeframe", "2Min"], {}, {}, "2Min"),
    ("ingest --source parquet without --path", ["ingest", "--source", "parquet"], {}, {},
     "--path"),
    ("ingest --start not a date", ["ingest", "--start", "01/02/2010"], {}, {}, "YYYY-MM-DD"),
    ("ingest --source nowhere", ["ingest", "--source", "nowhere"], {}, {}, "nowhere"),
    ("ingest unknown sample symbol", ["ingest", "--symbols", "ZZZZ"], {}, {}, "ZZZZ"),
    ("train --model foo", ["train", "--model", "foo"], {}, {}, "signal_quality"),
    ("train --source missing file", ["train", "--source", "nofile.parquet"], {}, {},
     "nofile.parquet"),
    ("train --end not a date", ["train", "--end", "2010-02-30"], {}, {}, "YYYY-MM-DD"),
    ("features compute on a folder", ["features", "compute", "--input", "folder", "--output",
     "out.parquet"], {"folder/readme.txt": "x"}, {}, "is a folder"),
    ("features compute on a missing file", ["features", "compute", "--input", "none.parquet",
     "--output", "out.parquet"], {}, {}, "does not exist"),
    ("features compute on a bad file", ["features", "compute", "--input", "bad.parquet",
     "--output", "out.parquet"], {"bad.parquet": "not parquet"}, {}, "cannot read"),
    ("serve --port out of range", ["serve", "--port", "70000"], {}, {}, "1-65535"),
    ("serve --workers 0", ["serve", "--workers", "0"], {}, {}, "--workers"),
    ("trade --broker foo", ["trade", "--broker", "foo"], {}, {}, "paper-exchange"),
    ("trade with no exchange running", ["trade", "--exchange-url", "http://127.0.0.1:9",
     "--api-port", "0"], {}, {}, "start the exchange with `tradewind paper-exchange`"),
    ("deploy --flow foo", ["deploy", "--flow", "foo"], {}, {}, "ingest"),
    ("deploy --timeframe 2Min", ["deploy", "--timeframe", "2Min"], {}, {}, "2Min"),
    ("deploy --source store", ["deploy", "--source", "store"], {}, {}, "'sample', 'sp500'"),
    ("deploy --source parquet without a path", ["deploy", "--source", "parquet"], {}, {},
     "needs data.path"),
]


@pytest.mark.parametrize(
    ("argv", "files", "env", "fragment"),
    [pytest.param(*row[1:], id=row[0]) for row in MISTAKES],
)
def test_a_mistake_is_one_error_line(
    workdir: Path, argv: list[str], files: dict[str, str], env: dict[str, str], fragment: str
) -> None:
    for name, text in files.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(text, encoding="utf-8")
    outcome = run_cli(*argv, env=env)
    assert outcome.code == 2, (outcome.stdout, outcome.stderr)
    assert len(outcome.error_lines) == 1, outcome.stderr
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert fragment in outcome.error_lines[0], outcome.error_lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process (here: this one) listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_serve_on_a_port_in_use_is_one_line(workdir: Path, busy_port: int) -> None:
    outcome = run_cli("serve", "--port", str(busy_port))
    assert outcome.code == 2
    assert len(outcome.error_lines) == 1
    assert f"127.0.0.1:{busy_port}" in outcome.error_lines[0]
    assert "another --port" in outcome.error_lines[0]


def test_demo_validates_before_it_clears_the_last_run(workdir: Path) -> None:
    previous = workdir / "data" / "demo" / "journal.db"
    previous.parent.mkdir(parents=True)
    previous.write_text("the last run", encoding="utf-8")
    for symbols in (["--symbols", "AAPL,ZZZZ"], ["--symbols", "AAPL", "--symbols", "NOPE"]):
        outcome = run_cli("demo", *symbols)
        assert outcome.code == 2
        assert len(outcome.error_lines) == 1
        assert "ingest first" not in outcome.stderr
    assert previous.read_text(encoding="utf-8") == "the last run"


def test_paper_exchange_fresh_keeps_the_state_when_inputs_are_wrong(workdir: Path) -> None:
    state = workdir / "data" / "paper_exchange.db"
    state.parent.mkdir(parents=True)
    state.write_text("journal", encoding="utf-8")
    outcome = run_cli("paper-exchange", "--fresh", "--port", "0")  # the store is empty
    assert outcome.code == 2
    assert len(outcome.error_lines) == 1
    assert state.exists()
