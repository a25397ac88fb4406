"""Where `/decide` finds a signal's features when the request leaves them out: the
symbol's latest row in an online feature store, read through the `OnlineFeatureReader`
port. Serving never knows which store that is: the composition root (`pipelines.serve`)
injects a factory for it (Feast's online store in the embedded default).

The reader is opened on first use, in the worker, and kept; a symbol the store has never
seen is a 404 naming it, never a guess."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from core.errors import NotFoundError, TradewindError


class OnlineFeatureReader(Protocol):
    """The latest feature row of a symbol (empty when the store has none)."""

    def online_features(self, symbol: str) -> Mapping[str, float | None]: ...


class OnlineFeatures:
    """Reads the latest features of a symbol through a lazily opened reader."""

    def __init__(self, open_reader: Callable[[], OnlineFeatureReader] | None = None) -> None:
        self._open_reader = open_reader
        self._reader: OnlineFeatureReader | None = None
        self._lock = threading.Lock()

    def latest(self, symbol: str) -> dict[str, float | None]:
        reader = self._open()
        try:
            row = reader.online_features(symbol)
        except TradewindError:
            raise
        except Exception as exc:  # stores raise their own types; say what failed, no traceback
            raise NotFoundError(
                f"no online features for '{symbol}': {type(exc).__name__}: {exc}",
                where="features",
            ) from exc
        if not row:
            raise NotFoundError(
                f"the online store has no features for '{symbol}' (materialize first)",
                where="features",
            )
        return {
            name: None if value is None or (isinstance(value, float) and math.isnan(value))
            else value
            for name, value in row.items()
        }

    def _open(self) -> OnlineFeatureReader:
        with self._lock:
            if self._reader is None:
                if self._open_reader is None:
                    raise NotFoundError(
                        "this service has no online feature store: send the features",
                        where="features",
                    )
                self._reader = self._open_reader()
            return self._reader
