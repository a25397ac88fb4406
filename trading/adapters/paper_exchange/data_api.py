"""Alpaca's market-data API, served locally: `GET /v2/stocks/bars` over a bar frame or
the offline `BarStore`, so the real alpaca-py SDK (`url_override`) can be tested offline
and the paper exchange answers market-data calls from the same server.

What it speaks (the subset of https://docs.alpaca.markets/reference/stockbars):
- `symbols` (comma-separated, required), `timeframe` (`1Min`, `5Min`, `15Min`, `1Hour`,
  `1Day`; also `Min`/`Hour`/`Day` without the 1), `start`/`end` (RFC 3339 or a date;
  inclusive; a date means that New York day; no bound when absent), `limit` (1-10000,
  default 1000) and `page_token`, `sort` (`asc`/`desc`), `adjustment` and `feed`
  (checked, then ignored: the bars are served as stored), `asof`, `currency`.
- The answer: `{"bars": {"AAPL": [{"t", "o", "h", "l", "c", "v", "n", "vw"}...]},
  "next_page_token": ...}`. Like Alpaca, `limit` counts bars across all symbols, the
  bars go symbol by symbol, and the token resumes exactly after the last bar sent.
  `n` and `vw` (trade count, VWAP) are null: a bar frame does not carry them and a
  made-up value would be a silently wrong number.
- Coarser timeframes are aggregated from the finest stored one (e.g. 5Min from 1Min)
  on bars' start times; daily bars are never built from minutes.
- Errors as Alpaca words them: `{"code": ..., "message": ...}` with 400/401/422.
- Keys as Alpaca checks them: a request without both `APCA-API-KEY-ID` and
  `APCA-API-SECRET-KEY` is a 401; when the app has keys, they must match (compared in
  constant time).
- Behind the paper exchange (`now` given), never a bar after the replay clock: `end` is
  capped at the clock, so a strategy tested against it cannot see the future.
- Tests: `RateLimit.arm(n)` makes the next `n` requests answer HTTP 429, the way
  Alpaca signals its rate limit; `requests` records every query served.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.bars import DAILY, TIMEFRAMES, aggregate_bars, empty_bars, normalize_bars, time_bound
from core.errors import DataValidationError
from core.network import same_secret
from features.bar_store import BarStore

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
FEEDS = frozenset({"iex", "sip", "delayed_sip", "otc", "boats", "overnight"})
ADJUSTMENTS = frozenset({"raw", "split", "dividend", "all"})
_MINUTES = {"1Min": 1, "5Min": 5, "15Min": 15, "1Hour": 60}
_SPELLINGS = {"Min": "1Min", "T": "1Min", "5T": "5Min", "15T": "15Min", "Hour": "1Hour",
              "H": "1Hour", "Day": "1Day", "D": "1Day"}  # fmt: skip


class DataApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_page_size: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)  # a smaller page forces paging
    api_key: SecretStr | None = None  # when set, requests must carry this key pair
    secret_key: SecretStr | None = None


@dataclass
class RateLimit:
    """A switch for tests: the next `remaining` requests get HTTP 429."""

    remaining: int = 0
    answered: int = 0  # how many 429s were sent
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def arm(self, times: int) -> None:
        with self._lock:
            self.remaining = times

    def take(self) -> bool:
        with self._lock:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            self.answered += 1
            return True


class BarSource:
    """Where the served bars come from: an in-memory bar frame or a `BarStore`."""

    def __init__(self, bars: pd.DataFrame | BarStore, timeframe: str = DAILY) -> None:
        self._store = bars if isinstance(bars, BarStore) else None
        self._frame = None if isinstance(bars, BarStore) else normalize_bars(bars)
        self._frame_timeframe = timeframe

    def bars(
        self,
        symbols: list[str],
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        timeframe: str,
    ) -> pd.DataFrame:
        stored = self._stored_timeframe(timeframe)
        if stored is None:
            return empty_bars()
        if self._store is not None:
            frame = self._store.read(symbols, start, end, timeframe=stored)
        else:
            assert self._frame is not None
            frame = self._frame
            keep = frame["symbol"].isin(symbols)
            if start is not None:
                keep &= frame["timestamp"] >= start
            if end is not None:
                keep &= frame["timestamp"] <= end
            frame = frame[keep]
        if stored != timeframe:
            frame = _aggregate(frame, _MINUTES[timeframe])
        return frame.reset_index(drop=True)

    def _stored_timeframe(self, timeframe: str) -> str | None:
        """The timeframe to read: the one asked for when it is there, else the finest
        intraday one that divides it; None when nothing can make it."""
        available = [self._frame_timeframe] if self._store is None else self._store.timeframes()
        if timeframe in available:
            return timeframe
        if timeframe == DAILY:
            return None
        finer = [
            tf for tf in available if tf in _MINUTES and _MINUTES[timeframe] % _MINUTES[tf] == 0
        ]
        return min(finer, key=_MINUTES.__getitem__) if finer else None


def _aggregate(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Bars of `minutes` from finer bars, each stamped with its start (Alpaca's way)."""
    return aggregate_bars(frame, pd.Timedelta(minutes=minutes))


def build_data_app(
    source: pd.DataFrame | BarStore | Path | str,
    config: DataApiConfig | None = None,
    *,
    timeframe: str = DAILY,
    now: Callable[[], datetime] | None = None,
) -> Starlette:
    """The market-data API as an ASGI app. `source` is a bar frame (of `timeframe`), a
    `BarStore`, or the store's folder; `now` (a replay clock) is the latest bar time it
    may serve. The app's `state.rate_limit` (`RateLimit`) and
    `state.requests` (queries served) are there for tests."""
    config = config or DataApiConfig()
    if isinstance(source, str | Path):
        source = BarStore(Path(source))
    bar_source = BarSource(source, timeframe)
    rate_limit = RateLimit()
    served: list[dict[str, str]] = []

    async def stock_bars(request: Request) -> JSONResponse:
        served.append(dict(request.query_params))
        if rate_limit.take():
            return JSONResponse(
                {"message": "too many requests."},
                status_code=429,
                headers={"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0"},
            )
        if not _authorized(request, config):
            return _error(401, 40110000, "request is not authorized")
        try:
            query = _BarsQuery.parse(request.query_params, config)
        except DataValidationError as exc:
            return _error(422 if "invalid" in exc.message else 400, 42210000, exc.message)
        symbols = query.symbols
        if query.resume is not None:  # earlier symbols were sent on earlier pages
            symbols = [symbol for symbol in symbols if symbol >= query.resume[0]]
        end = query.end
        if now is not None:
            latest = pd.Timestamp(now())
            end = latest if end is None else min(end, latest)
        if query.start is not None and end is not None and query.start > end:
            frame = empty_bars()
        else:
            frame = bar_source.bars(symbols, query.start, end, query.timeframe)
        return JSONResponse(_page(frame, query))

    app = Starlette(routes=[Route("/v2/stocks/bars", stock_bars, methods=["GET"])])
    app.state.rate_limit = rate_limit
    app.state.requests = served
    return app


create_app = build_data_app  # the name the paper exchange also looks for


def _authorized(request: Request, config: DataApiConfig) -> bool:
    key = request.headers.get("APCA-API-KEY-ID")
    secret = request.headers.get("APCA-API-SECRET-KEY")
    if not key or not secret:
        return False
    if config.api_key is None or config.secret_key is None:
        return True
    # Both compared, always: the time taken says nothing about which one was wrong.
    key_ok = same_secret(key, config.api_key.get_secret_value())
    secret_ok = same_secret(secret, config.secret_key.get_secret_value())
    return key_ok and secret_ok


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


@dataclass(frozen=True)
class _BarsQuery:
    symbols: list[str]
    timeframe: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    limit: int
    descending: bool
    resume: tuple[str, int] | None  # (symbol, timestamp ns) of the next bar to send

    @classmethod
    def parse(cls, params: Any, config: DataApiConfig) -> _BarsQuery:
        symbols = [s.strip().upper() for s in params.get("symbols", "").split(",") if s.strip()]
        if not symbols:
            raise DataValidationError("missing symbols")
        timeframe = params.get("timeframe", "")
        timeframe = _SPELLINGS.get(timeframe, timeframe)
        if timeframe not in TIMEFRAMES:
            raise DataValidationError(f"invalid timeframe {params.get('timeframe')!r}")
        for name, allowed in (("feed", FEEDS), ("adjustment", ADJUSTMENTS)):
            value = params.get(name)
            if value is not None and value not in allowed:
                raise DataValidationError(f"invalid {name} {value!r}")
        sort = params.get("sort", "asc")
        if sort not in ("asc", "desc"):
            raise DataValidationError(f"invalid sort {sort!r}")
        try:
            limit = int(params.get("limit") or DEFAULT_LIMIT)
        except ValueError:
            raise DataValidationError(f"invalid limit {params.get('limit')!r}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise DataValidationError(f"invalid limit {limit}: must be 1 to {MAX_LIMIT}")
        try:
            start = time_bound(params.get("start"))
            end = time_bound(params.get("end"), end=True)
        except DataValidationError as exc:
            raise DataValidationError(f"invalid time: {exc.message}") from None
        return cls(
            symbols=sorted(set(symbols)),
            timeframe=timeframe,
            start=start,
            end=end,
            limit=min(limit, config.max_page_size),
            descending=sort == "desc",
            resume=_decode_token(params.get("page_token")),
        )


def _encode_token(symbol: str, nanos: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([symbol, nanos]).encode()).decode()


def _decode_token(token: str | None) -> tuple[str, int] | None:
    if not token:
        return None
    try:
        symbol, nanos = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(symbol), int(nanos)
    except (ValueError, TypeError, binascii.Error):
        raise DataValidationError(f"invalid page_token {token!r}") from None


def _page(frame: pd.DataFrame, query: _BarsQuery) -> dict[str, Any]:
    """One page of bars in Alpaca's order (symbol ascending, time asc/desc)."""
    stamps = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    nanos = stamps.astype("datetime64[ns]").view("int64")
    signed = -nanos if query.descending else nanos
    order = np.lexsort((signed, frame["symbol"].to_numpy()))
    symbols = frame["symbol"].to_numpy()[order]
    keys = signed[order]
    begin = 0
    if query.resume is not None:
        symbol, resume_nanos = query.resume
        after = -resume_nanos if query.descending else resume_nanos
        # First row with (symbol, key) >= the token's (symbol, key).
        begin = int(np.searchsorted(symbols, symbol, side="left"))
        same = begin + int(np.searchsorted(keys[begin:][symbols[begin:] == symbol], after))
        begin = same
    stop = min(begin + query.limit, len(order))
    page = frame.iloc[order[begin:stop]]
    stamps_text = page["timestamp"].map(lambda t: t.isoformat().replace("+00:00", "Z"))
    volumes = [int(v) if float(v).is_integer() else float(v) for v in page["volume"]]
    bars: dict[str, list[dict[str, Any]]] = {}
    for symbol, t, o, h, low, c, v in zip(
        page["symbol"],
        stamps_text,
        page["open"].tolist(),
        page["high"].tolist(),
        page["low"].tolist(),
        page["close"].tolist(),
        volumes,
        strict=True,
    ):
        bar = {"t": t, "o": o, "h": h, "l": low, "c": c, "v": v, "n": None, "vw": None}
        bars.setdefault(str(symbol), []).append(bar)
    token = None
    if stop < len(order):
        following = order[stop]
        token = _encode_token(str(frame["symbol"].iloc[following]), int(nanos[following]))
    return {"bars": bars, "next_page_token": token}
