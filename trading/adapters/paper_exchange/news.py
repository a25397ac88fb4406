"""News the paper exchange replays on Alpaca's news stream (`/v1beta1/news`).

The news file is JSON Lines, one article per line (blank lines and lines starting with
`#` are skipped):

    {"created_at": "2021-08-20T14:31:30Z", "headline": "Apple beats estimates",
     "symbols": ["AAPL"], "id": 1, "summary": "", "source": "benzinga", "author": ""}

`created_at` (RFC 3339 with a zone), `headline` and `symbols` (a non-empty list) are
required; `id` defaults to the line number, the other fields to "". The same objects are
accepted by `POST /admin/news {"items": [...]}`. An article goes out when the exchange's
replay clock reaches its `created_at`; one loaded at or before the clock goes out at
once (breaking news). A mistake names the file, the line and the field."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgpack

from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class NewsArticle:
    id: int
    created_at: datetime
    headline: str
    symbols: tuple[str, ...]
    summary: str = ""
    source: str = ""
    author: str = ""
    url: str = ""


def parse_article(raw: object, where: str, default_id: int) -> NewsArticle:
    """One article from its JSON object, or a `ConfigError` naming `where` and the field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"a news item must be a JSON object, got {type(raw).__name__}",
                          where=where)
    unknown = sorted(set(raw) - {"id", "created_at", "headline", "symbols", "summary",
                                 "source", "author", "url"})
    if unknown:
        raise ConfigError(f"unknown news field(s) {', '.join(unknown)}", where=where)
    stamp = raw.get("created_at")
    try:
        created = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"created_at {stamp!r} is not an RFC 3339 time", where=where) from None
    if created.tzinfo is None:
        raise ConfigError(f"created_at {stamp!r} has no time zone", where=where)
    headline = raw.get("headline")
    if not isinstance(headline, str) or not headline.strip():
        raise ConfigError("headline must be a non-empty string", where=where)
    symbols = raw.get("symbols")
    if (not isinstance(symbols, list) or not symbols
            or not all(isinstance(s, str) and s.strip() for s in symbols)):
        raise ConfigError("symbols must be a non-empty list of tickers", where=where)
    article_id = raw.get("id", default_id)
    if not isinstance(article_id, int) or isinstance(article_id, bool):
        raise ConfigError(f"id {article_id!r} is not an integer", where=where)
    text = {k: raw.get(k, "") for k in ("summary", "source", "author", "url")}
    for key, value in text.items():
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string", where=where)
    return NewsArticle(article_id, created, headline.strip(),
                       tuple(s.strip().upper() for s in symbols), **text)


def read_news_file(path: Path) -> list[NewsArticle]:
    """Every article of a JSON Lines news file (see the module doc)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the news file: {exc.strerror}", where=str(path)) from None
    articles = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not JSON: {exc.msg}", where=where) from None
        articles.append(parse_article(raw, where, number))
    return articles


class NewsReplay:
    """Articles in `created_at` order; the venue takes those its clock has reached."""

    def __init__(self, articles: list[NewsArticle] | None = None) -> None:
        self._articles: list[NewsArticle] = []
        self._times: list[datetime] = []
        self._sent = 0
        for article in articles or ():
            self.add(article)

    def add(self, article: NewsArticle) -> None:
        at = bisect.bisect_right(self._times, article.created_at, lo=self._sent)
        self._times.insert(at, article.created_at)
        self._articles.insert(at, article)

    def due(self, now: datetime) -> list[NewsArticle]:
        """The unsent articles created at or before `now`, oldest first."""
        end = bisect.bisect_right(self._times, now, lo=self._sent)
        due, self._sent = self._articles[self._sent:end], end
        return due

    def published(self) -> list[NewsArticle]:
        """The articles sent so far, oldest first (what the news REST API serves)."""
        return self._articles[: self._sent]

    def __len__(self) -> int:
        return len(self._articles)


def news_message(article: NewsArticle) -> dict[str, Any]:
    """Alpaca's news stream message (`T: n`), as `NewsDataStream` parses it."""
    stamp = msgpack.Timestamp.from_datetime(article.created_at)
    return {
        "T": "n",
        "id": article.id,
        "headline": article.headline,
        "summary": article.summary,
        "author": article.author,
        "created_at": stamp,
        "updated_at": stamp,
        "url": article.url,
        "content": "",
        "symbols": list(article.symbols),
        "source": article.source,
    }


def news_json(article: NewsArticle) -> dict[str, Any]:
    """Alpaca's news REST article (`GET /v1beta1/news`), as `NewsClient` parses it."""
    stamp = article.created_at.isoformat().replace("+00:00", "Z")
    return {
        "id": article.id,
        "headline": article.headline,
        "author": article.author,
        "created_at": stamp,
        "updated_at": stamp,
        "summary": article.summary,
        "content": "",
        "url": article.url or None,
        "images": [],
        "symbols": list(article.symbols),
        "source": article.source,
    }
