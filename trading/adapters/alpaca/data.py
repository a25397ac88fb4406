"""`AlpacaMarketData`: historical bars from Alpaca's market-data API through alpaca-py's
`StockHistoricalDataClient` (1Min, 5Min, 15Min, 1Hour, 1Day; adjustment; feed).

- Pagination: the SDK follows `next_page_token` itself (`RESTClient._get_marketdata`).
- Rate limits: the SDK's `RESTClient` already retries HTTP 429/504 with a fixed wait;
  `StockHistoricalDataClient` (alpaca-py 0.44) does not pass those settings through and
  ignores a zero wait, so `_StockDataClient` sets them from `AlpacaDataConfig`. When the
  retries run out the caller gets a `DataSourceError` saying so.
- The SDK sends requests without a timeout; `_TimeoutSession` adds one.
- Answers are taken raw (`raw_data=True`: no pydantic object per bar) and validated
  with `core.bars.validate_bars` like every other source; daily bars keep Alpaca's own
  stamp (midnight New York, in UTC).
- Credentials come from `core.settings.AlpacaCredentials` only and never appear in a
  message or log line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from core.bars import DAILY, BarCheck, check_timeframe, empty_bars, time_bound, validate_bars
from core.clock import Clock, WallClock
from core.errors import AuthenticationError, DataSourceError
from core.settings import AlpacaCredentials
from trading.adapters.alpaca.config import AlpacaDataConfig

TIMEFRAMES: dict[str, TimeFrame] = {
    "1Min": TimeFrame(1, TimeFrameUnit.Minute),
    "5Min": TimeFrame(5, TimeFrameUnit.Minute),
    "15Min": TimeFrame(15, TimeFrameUnit.Minute),
    "1Hour": TimeFrame(1, TimeFrameUnit.Hour),
    "1Day": TimeFrame(1, TimeFrameUnit.Day),
}
DEFAULT_LOOKBACK = timedelta(days=365)


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


class _StockDataClient(StockHistoricalDataClient):
    """alpaca-py's client with its own retry loop configured (see the module docstring)."""

    def __init__(self, config: AlpacaDataConfig, api_key: str, secret_key: str) -> None:
        super().__init__(api_key, secret_key, raw_data=True, url_override=config.data_url)
        # The same three fields RESTClient.__init__ sets from retry_attempts,
        # retry_wait_seconds and retry_exception_codes.
        self._retry = config.retry_attempts
        self._retry_wait = config.retry_wait_seconds  # type: ignore[assignment]
        self._retry_codes = list(config.retry_status_codes)
        self._session = _TimeoutSession(config.timeout_seconds)


class AlpacaMarketData:
    """The `MarketData` port on Alpaca's historical bars."""

    def __init__(
        self,
        config: AlpacaDataConfig | None = None,
        credentials: AlpacaCredentials | None = None,
        clock: Clock | None = None,
        *,
        repair: bool = False,
    ) -> None:
        self.config = config or AlpacaDataConfig()
        self.repair = repair
        # Market data is the same for paper and live accounts: no live-trading check here.
        api_key, secret_key, _ = (credentials or AlpacaCredentials()).require(allow_live=True)
        self._client = _StockDataClient(self.config, api_key, secret_key)
        self._clock = clock or WallClock()

    @property
    def where(self) -> str:
        return f"alpaca data {self.config.data_url or 'data.alpaca.markets'}"

    def history_check(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
        *,
        repair: bool | None = None,
    ) -> BarCheck:
        """Bars of `symbols` between start and end (inclusive; default: the last year up
        to now), validated; with repair (default: the constructor's) bad bars are dropped
        or fixed and reported."""
        check_timeframe(timeframe)
        if not symbols:
            raise DataSourceError("Alpaca needs the symbols to fetch", where=self.where)
        upper = time_bound(end, end=True) or pd.Timestamp(self._clock.now())
        lower = time_bound(start) or upper - DEFAULT_LOOKBACK
        wanted = list(dict.fromkeys(s.upper() for s in symbols))
        step = self.config.symbols_per_request
        frames = [
            self._fetch(wanted[i : i + step], lower, upper, timeframe)
            for i in range(0, len(wanted), step)
        ]
        frame = pd.concat(frames, ignore_index=True) if frames else empty_bars()
        repair = self.repair if repair is None else repair
        return validate_bars(frame, where=self.where, repair=repair, timeframe=timeframe)

    def history(
        self,
        symbols: Sequence[str] | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        timeframe: str = DAILY,
    ) -> pd.DataFrame:
        return self.history_check(symbols, start, end, timeframe).bars

    def _fetch(
        self, symbols: list[str], start: pd.Timestamp, end: pd.Timestamp, timeframe: str
    ) -> pd.DataFrame:
        request = StockBarsRequest(
            symbol_or_symbols=symbols,
            timeframe=TIMEFRAMES[timeframe],
            start=start.to_pydatetime(),
            end=end.floor("us").to_pydatetime(),
            adjustment=Adjustment(self.config.adjustment),
            feed=DataFeed(self.config.feed),
        )
        try:
            raw = self._client.get_stock_bars(request)
        except APIError as exc:
            raise self._api_error(exc) from None
        except requests.RequestException as exc:
            raise DataSourceError(
                f"cannot reach the data API: {type(exc).__name__}", where=self.where
            ) from None
        return _to_frame(raw)

    def _api_error(self, exc: APIError) -> Exception:
        status = exc.status_code
        if status in (401, 403):
            return AuthenticationError(
                f"the data API refused the credentials (HTTP {status})", where=self.where
            )
        if status in self.config.retry_status_codes:
            return DataSourceError(
                f"HTTP {status} (rate limited or busy) still after "
                f"{self.config.retry_attempts} retries {self.config.retry_wait_seconds:g}s apart",
                where=self.where,
            )
        try:
            detail = str(exc.message)  # Alpaca's JSON {"message": ...}
        except (ValueError, KeyError, TypeError):
            detail = str(exc)[:200]
        return DataSourceError(f"HTTP {status}: {detail}", where=self.where)


def _to_frame(raw: Any) -> pd.DataFrame:
    """Alpaca's raw `{symbol: [{"t","o","h","l","c","v",...}]}` as a bar frame."""
    if not isinstance(raw, dict):
        raise DataSourceError(f"unexpected answer {type(raw).__name__}", where="alpaca data")
    rows = [
        (symbol, bar.get("t"), bar.get("o"), bar.get("h"), bar.get("l"), bar.get("c"), bar.get("v"))
        for symbol, bars in raw.items()
        for bar in bars or []
    ]
    if not rows:
        return empty_bars()
    return pd.DataFrame(
        rows, columns=["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    )
