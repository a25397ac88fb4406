"""Serving's online-feature port: the injected reader is opened once, on first use; NaN
becomes null; a symbol the store does not know, a store that fails, and a service without
a store are each a 404 naming what is missing."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from core.errors import NotFoundError
from serving.online_features import OnlineFeatures


class _Store:
    """An online store holding the latest row of each symbol."""

    opened = 0

    def __init__(self, rows: dict[str, dict[str, float | None]]) -> None:
        type(self).opened += 1
        self.rows = rows

    def online_features(self, symbol: str) -> Mapping[str, float | None]:
        if symbol == "BOOM":
            raise RuntimeError("store offline")
        return self.rows.get(symbol, {})


def test_the_reader_is_opened_once_and_nan_becomes_null() -> None:
    _Store.opened = 0
    online = OnlineFeatures(lambda: _Store({"AAPL": {"rsi_14": 55.0, "news_count": float("nan")}}))
    assert _Store.opened == 0  # nothing opened before the first request needs it
    assert online.latest("AAPL") == {"rsi_14": 55.0, "news_count": None}
    online.latest("AAPL")
    assert _Store.opened == 1


def test_unknown_symbols_failures_and_a_missing_store_are_not_found() -> None:
    online = OnlineFeatures(lambda: _Store({}))
    with pytest.raises(NotFoundError, match="no features for 'ZZZ'"):
        online.latest("ZZZ")
    with pytest.raises(NotFoundError, match="RuntimeError: store offline"):
        online.latest("BOOM")
    with pytest.raises(NotFoundError, match="send the features"):
        OnlineFeatures().latest("AAPL")
