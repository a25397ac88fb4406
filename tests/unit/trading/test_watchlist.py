"""The watchlist file: written atomically, read back, and a bad file is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from trading.watchlist import Watchlist, read_watchlist, write_watchlist


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lists" / "watchlist.json"
    write_watchlist(path, Watchlist(as_of="2017-06-01", symbols=("NVDA", "AMD")))
    assert read_watchlist(path) == Watchlist(as_of="2017-06-01", symbols=("NVDA", "AMD"))
    assert [p.name for p in path.parent.iterdir()] == ["watchlist.json"]  # no temp file left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no watchlist at"),
        ("{not json", "not readable JSON"),
        ('{"symbols": []}', "non-empty list of symbols"),
        ('{"symbols": ["AAPL", 3]}', "non-empty list of symbols"),
        ('["AAPL"]', "non-empty list of symbols"),
    ],
)
def test_bad_files_get_one_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "watchlist.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_watchlist(path)
