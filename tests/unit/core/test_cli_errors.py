"""The command line turns Tradewind's errors into one readable line, brackets and all."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.cli import main


def test_a_bad_bar_file_is_reported_verbatim_with_its_rows(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = workdir / "bad.csv"
    bad.write_text(
        "symbol,timestamp,open,high,low,close,volume\n"
        "AAPL,2020-01-02,10,9,8,9.5,100\n"
        "AAPL,2020-01-03,10,11,9,12,100\n"
    )
    with pytest.raises(SystemExit) as finished:
        main(["ingest", "--source", "csv", "--path", str(bad)])
    assert finished.value.code == 2
    message = " ".join(capsys.readouterr().err.split())
    assert "price outside [low, high] in column close" in message
    assert "row 1 AAPL" in message
    assert "Traceback" not in message
