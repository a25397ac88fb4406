"""`tradewind screen` end to end: the screen flow (Prefect, the project's local database)
reads the real S&P 500 daily bars from the bar store and writes the watchlist the
running engine picks up; the symbols are the screener's top ranks as of that date."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.types import BAR_COLUMNS
from pipelines.cli import main
from tests.integration.exchange_support import write_store
from trading.screener import ScreenerConfig, screen
from trading.watchlist import read_watchlist

pytestmark = pytest.mark.integration
AS_OF = "2017-06-01"


def test_screen_writes_the_top_ranks_as_the_watchlist(
    workdir: Path, sp500_daily: pd.DataFrame, spy_daily: pd.DataFrame,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The flow starts Prefect's local API; on a busy machine that takes a while.
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    window = sp500_daily.loc[
        (sp500_daily["timestamp"] >= "2017-02-01") & (sp500_daily["timestamp"] < "2017-07-01"),
        list(BAR_COLUMNS),
    ]
    spy = spy_daily.loc[spy_daily["timestamp"] >= "2017-02-01", list(BAR_COLUMNS)]
    stored = write_store(workdir / "data", pd.concat([window, spy], ignore_index=True))

    code = 0
    try:
        main(["screen", "--as-of", AS_OF, "--top", "5"])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    assert code == 0, capsys.readouterr().out

    watchlist = read_watchlist(workdir / "data" / "watchlist.json")
    expected = screen(stored, AS_OF, ScreenerConfig(top=5))
    assert watchlist.as_of == AS_OF
    assert list(watchlist.symbols) == expected.loc[expected["on_watchlist"], "symbol"].tolist()
    assert f"watchlist of {AS_OF}" in capsys.readouterr().out
