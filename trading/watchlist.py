"""The day's watchlist: the symbols the screener picked, as a small JSON file the
screener writes (atomically) and the running engine re-reads when it changes.

    {"as_of": "2017-06-01", "symbols": ["NVDA", ...], "written_at": "..."}"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Watchlist:
    as_of: str
    symbols: tuple[str, ...]


def write_watchlist(path: Path, watchlist: Watchlist) -> None:
    """Replace the file atomically: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "as_of": watchlist.as_of,
        "symbols": list(watchlist.symbols),
        "written_at": datetime.now(UTC).isoformat(),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(body, indent=2))
    os.replace(temporary, path)


def read_watchlist(path: Path) -> Watchlist:
    """The watchlist in `path`, or a `ConfigError` saying what is wrong with the file."""
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no watchlist at {path}; run `tradewind screen` first",
                          where="watchlist") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"watchlist {path} is not readable JSON: {exc}",
                          where="watchlist") from None
    symbols = body.get("symbols") if isinstance(body, dict) else None
    if not isinstance(symbols, list) or not symbols or not all(
        isinstance(s, str) and s for s in symbols
    ):
        raise ConfigError(f"watchlist {path} needs a non-empty list of symbols",
                          where="watchlist")
    return Watchlist(as_of=str(body.get("as_of", "")), symbols=tuple(s.upper() for s in symbols))
