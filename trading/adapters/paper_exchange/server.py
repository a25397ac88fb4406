"""Running the paper exchange: load the bars to replay, build the venue and its app,
serve it with uvicorn on 127.0.0.1 (by default), and stop cleanly on SIGTERM/SIGINT.

`tradewind paper-exchange --port P` calls `serve`; tests start that command as a real
subprocess and wait for the line `paper exchange listening on http://HOST:PORT`."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from core.errors import ConfigError, DataSourceError
from trading.adapters.paper_exchange.app import build_app
from trading.adapters.paper_exchange.config import PaperExchangeConfig
from trading.adapters.paper_exchange.news import NewsArticle
from trading.adapters.paper_exchange.venue import PaperVenue

READY_LINE = "paper exchange listening on"


def load_store_bars(config: PaperExchangeConfig, bars_dir: Path) -> pd.DataFrame:
    """The bars to replay from the offline bar store, or a clear error when there are none."""
    from features.bar_store import BarStore

    store = BarStore(bars_dir)
    symbols: Sequence[str] | None = list(config.symbols) if config.symbols else None
    bars = store.read(
        symbols=symbols, start=config.start, end=config.end, timeframe=config.timeframe
    )
    if bars.empty:
        wanted = ", ".join(symbols) if symbols else "any symbol"
        raise DataSourceError(
            f"the bar store at {bars_dir} has no {config.timeframe} bars for {wanted} in the "
            "requested window; load some first (`tradewind ingest --source sample`, see "
            "`tradewind data show`) or pick other --symbols/--start",
            where="paper-exchange",
        )
    return bars


def market_data_app(
    bars_dir: Path, config: PaperExchangeConfig, now: Callable[[], datetime] | None = None
) -> ASGIApp:
    """The DATA team's Alpaca market-data API over the same bar store (and keys), so one
    server answers both `/v2/orders` and `/v2/stocks/bars`."""
    from trading.adapters.paper_exchange.data_api import DataApiConfig, build_data_app

    data_config = DataApiConfig(api_key=config.api_key, secret_key=config.secret_key)
    return build_data_app(bars_dir, data_config, timeframe=config.timeframe, now=now)


def create_exchange_app(
    bars: pd.DataFrame,
    config: PaperExchangeConfig,
    *,
    bars_dir: Path | None = None,
    news: list[NewsArticle] | None = None,
) -> Starlette:
    venue = PaperVenue(bars, config, news)
    interval = 1.0 / config.bars_per_second if config.bars_per_second > 0 else None
    # The venue's replay clock bounds the bars served: no bar after the exchange's now.
    data_app = market_data_app(bars_dir, config, venue.now) if bars_dir is not None else None
    return build_app(venue, config, data_app=data_app, replay_interval=interval)


def serve(
    bars: pd.DataFrame,
    config: PaperExchangeConfig,
    *,
    bars_dir: Path | None = None,
    news: list[NewsArticle] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn handles both and shuts down gracefully)."""
    app = create_exchange_app(bars, config, bars_dir=bars_dir, news=news)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((config.host, config.port))
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror}", where="paper-exchange"
        ) from None
    listener.listen(128)  # connections queue from here on, before uvicorn accepts them
    host, port = listener.getsockname()[:2]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="websockets-sansio",
            timeout_graceful_shutdown=3,  # open streams must not hold a shutdown up
        )
    )
    print(f"{READY_LINE} http://{host}:{port}", flush=True)
    server.run(sockets=[listener])
