"""Where `/decide` finds a signal's features when the request leaves them out: the
symbol's latest row in an online feature store, read through the `OnlineFeatureReader`
port. Serving never knows which store that is: the composition root (`pipelines.serve`)
injects a factory for it (Feast's online store in the embedded default).

The reader is opened on first use, in the worker, and kept; a symbol the store has never
seen is a 404 naming it, never a guess. A row older than the signal allows (`max_age`
before the signal's bar; a store nobody materialized for weeks) is refused with a 422
that says how old it is, never decided on quietly."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from core.errors import DataValidationError, NotFoundError, TradewindError


class OnlineFeatureReader(Protocol):
    """The latest feature row of a symbol (empty when the store has none) and when its
    bar features became known (None when the store cannot say)."""

    def online_row(self, symbol: str) -> tuple[Mapping[str, float | None], datetime | None]: ...


class OnlineFeatures:
    """Reads the latest features of a symbol through a lazily opened reader."""

    def __init__(self, open_reader: Callable[[], OnlineFeatureReader] | None = None) -> None:
        self._open_reader = open_reader
        self._reader: OnlineFeatureReader | None = None
        self._lock = threading.Lock()

    def latest(
        self, symbol: str, *, at: datetime | None = None, max_age: timedelta | None = None
    ) -> dict[str, float | None]:
        """The symbol's latest row; refused when it is more than `max_age` older than
        `at` (the signal's time)."""
        reader = self._open()
        try:
            row, as_of = reader.online_row(symbol)
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
        if at is not None and max_age is not None and as_of is not None and (
            at - as_of > max_age
        ):
            raise DataValidationError(
                f"the online features of '{symbol}' are stale: known since "
                f"{as_of:%Y-%m-%d %H:%M} UTC, {(at - as_of) / timedelta(hours=1):.0f} h before "
                f"the signal (limit {max_age / timedelta(hours=1):.0f} h); materialize the "
                "store (tradewind features materialize) or send the features",
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
