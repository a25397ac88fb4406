"""`tradewind paper-exchange` and `tradewind trade` refuse bad set-ups with one clear
line (exit code 2), before any server or broker is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return " ".join(capsys.readouterr().err.split())


def test_trade_needs_alpaca_keys(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = run(["trade", "--broker", "alpaca"], capsys)
    assert "ALPACA_API_KEY and ALPACA_SECRET_KEY must be set" in message


def test_trade_refuses_live_without_confirmation(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "k")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s")
    monkeypatch.setenv("ALPACA_PAPER", "false")
    message = run(["trade", "--broker", "alpaca"], capsys)
    assert "TRADEWIND_BROKER__ALLOW_LIVE=true" in message
    assert "k" not in message.split()  # the keys never show


def test_trade_names_unknown_brokers(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown --broker 'ibkr'" in run(["trade", "--broker", "ibkr"], capsys)


def test_trade_says_when_the_exchange_is_not_there(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = run(["trade", "--exchange-url", "http://127.0.0.1:9"], capsys)
    assert "cannot reach http://127.0.0.1:9" in message


def test_paper_exchange_needs_bars(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = run(["paper-exchange", "--port", "0", "--symbols", "AAPL"], capsys)
    assert "has no 1Day bars for AAPL" in message


def test_paper_exchange_checks_its_options(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "--start 'soon' is not an ISO date" in run(["paper-exchange", "--start", "soon"], capsys)
    assert "--require-keys needs ALPACA_API_KEY" in run(
        ["paper-exchange", "--require-keys"], capsys
    )


def test_paper_exchange_refuses_to_listen_beyond_loopback_without_keys(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = run(["paper-exchange", "--host", "0.0.0.0", "--port", "0"], capsys)
    assert "the paper exchange would listen on 0.0.0.0, beyond loopback, without api keys" in (
        message)
