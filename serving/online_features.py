"""Where `/decide` finds a signal's features when the request leaves them out: the
symbol's latest row in the Feast online store (`features.store.FeatureStore`).

The store is opened on first use, in the worker, and kept; a symbol the store has never
seen is a 404 naming it, never a guess."""

from __future__ import annotations

import math
import threading
from typing import Any

from core.errors import NotFoundError, TradewindError


class OnlineFeatures:
    """Reads the latest features of a symbol from the online store."""

    def __init__(self) -> None:
        self._store: Any = None
        self._lock = threading.Lock()

    def latest(self, symbol: str) -> dict[str, float | None]:
        store = self._open()
        try:
            row = store.online_features(symbol)
        except TradewindError:
            raise
        except Exception as exc:  # Feast raises its own types; say what failed, no traceback
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

    def _open(self) -> Any:
        with self._lock:
            if self._store is None:
                # Imported here: only a request without features needs Feast in the worker.
                from core.settings import load_settings
                from features.store import FeatureStore

                self._store = FeatureStore(load_settings().paths)
            return self._store
