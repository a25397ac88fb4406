"""`AlpacaNews`: headlines from Alpaca's news API (`/v1beta1/news`) through alpaca-py's
`NewsClient`, as a frame `symbol, timestamp, headline, source, news_id` (one row per
symbol an article is tagged with). Scoring is not done here: `features.sentiment` turns
the frame into features with VADER.

Pagination is the SDK's (it follows `next_page_token`); a failed request becomes a
`DataSourceError` (or `AuthenticationError` for 401/403) with the HTTP status, never
the credentials."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.news import NewsClient
from alpaca.data.requests import NewsRequest
from pydantic import BaseModel, ConfigDict, Field

from core.errors import AuthenticationError, DataSourceError
from core.settings import AlpacaCredentials

NEWS_FRAME_COLUMNS: tuple[str, ...] = ("symbol", "timestamp", "headline", "source", "news_id")


class AlpacaNewsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_url: str | None = None  # None: Alpaca's data API; a local server in tests
    symbols_per_request: int = Field(50, ge=1)  # keeps the query string short


class AlpacaNews:
    """Fetch headlines for symbols between two times."""

    def __init__(
        self, config: AlpacaNewsConfig | None = None, credentials: AlpacaCredentials | None = None
    ) -> None:
        self.config = config or AlpacaNewsConfig()
        api_key, secret_key, _ = (credentials or AlpacaCredentials()).require(allow_live=True)
        self._client = NewsClient(
            api_key, secret_key, raw_data=True, url_override=self.config.data_url
        )

    @property
    def where(self) -> str:
        return f"alpaca news {self.config.data_url or 'data.alpaca.markets'}"

    def headlines(self, symbols: Sequence[str], start: datetime, end: datetime) -> pd.DataFrame:
        """Every headline tagged with one of `symbols` between start and end (inclusive)."""
        wanted = list(dict.fromkeys(s.upper() for s in symbols))
        if not wanted:
            raise DataSourceError("news needs at least one symbol", where=self.where)
        rows: list[dict[str, Any]] = []
        step = self.config.symbols_per_request
        for i in range(0, len(wanted), step):
            chunk = wanted[i : i + step]
            request = NewsRequest(
                symbols=",".join(chunk),
                start=start,
                end=end,
                sort="asc",  # no `limit`: the SDK reads it as a TOTAL and pages 50 at a time
            )
            try:
                raw = self._client.get_news(request)
            except APIError as exc:
                raise self._api_error(exc) from None
            except requests.RequestException as exc:
                raise DataSourceError(
                    f"cannot reach the news API: {type(exc).__name__}", where=self.where
                ) from None
            rows.extend(_rows(raw, set(chunk), self.where))
        frame = pd.DataFrame(rows, columns=list(NEWS_FRAME_COLUMNS))
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)

    def _api_error(self, exc: APIError) -> Exception:
        status = exc.status_code
        if status in (401, 403):
            return AuthenticationError(
                f"the news API refused the credentials (HTTP {status})", where=self.where
            )
        return DataSourceError(f"news API answered HTTP {status}", where=self.where)


def _rows(raw: Any, wanted: set[str], where: str) -> list[dict[str, Any]]:
    """Alpaca's raw `{"news": [{"id","headline","created_at","symbols",...}]}` → rows."""
    articles = raw.get("news") if isinstance(raw, dict) else None
    if articles is None:
        raise DataSourceError(f"unexpected news answer {type(raw).__name__}", where=where)
    rows = []
    for article in articles:
        for symbol in article.get("symbols") or []:
            if symbol.upper() in wanted:
                rows.append(
                    {
                        "symbol": symbol.upper(),
                        "timestamp": article.get("created_at"),
                        "headline": article.get("headline") or "",
                        "source": article.get("source") or "",
                        "news_id": str(article.get("id")),
                    }
                )
    return rows
