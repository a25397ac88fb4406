"""Stopping an alpaca-py stream (`TradingStream`, `StockDataStream`) that runs in its own
thread: ask it to stop, close its socket so it does not wait out its 5 s receive
timeout, and join the thread, without the SDK logging our own close as an error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any


class _DropReconnectNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "websocket error" not in record.getMessage()


def stop_sdk_stream(stream: Any, thread: threading.Thread | None, sdk_logger: str) -> None:
    """Stop `stream` (an alpaca-py stream or None) and join `thread`."""
    log = logging.getLogger(sdk_logger)
    quiet = _DropReconnectNoise()
    log.addFilter(quiet)
    try:
        if stream is not None and stream._loop is not None:
            with contextlib.suppress(Exception):
                stream.stop()
                asyncio.run_coroutine_threadsafe(stream.close(), stream._loop).result(timeout=5)
        if thread is not None:
            thread.join(timeout=10)
    finally:
        log.removeFilter(quiet)
