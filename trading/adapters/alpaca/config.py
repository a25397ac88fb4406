"""Settings shared by the Alpaca adapters. Credentials are never here: they come from
the environment through `core.settings.AlpacaCredentials`, at the edge."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Feed = Literal["iex", "sip", "delayed_sip", "otc", "boats", "overnight"]
Adjustment = Literal["raw", "split", "dividend", "all"]


class AlpacaDataConfig(BaseModel):
    """Historical market data (`AlpacaMarketData`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Base URL of the data API (e.g. the local paper exchange); None = Alpaca's own.
    data_url: str | None = None
    feed: Feed = "iex"  # the free plan's feed; "sip" needs a subscription
    adjustment: Adjustment = "all"  # split- and dividend-adjusted, like the sample data
    symbols_per_request: int = Field(100, ge=1, le=1000)  # keeps the query string short
    # HTTP 429 (rate limit) and 504 back-off, done by alpaca-py's own RESTClient retry loop.
    retry_attempts: int = Field(5, ge=0)
    retry_wait_seconds: float = Field(3.0, ge=0)
    retry_status_codes: tuple[int, ...] = (429, 504)
    timeout_seconds: float = Field(30.0, gt=0)  # per HTTP request
