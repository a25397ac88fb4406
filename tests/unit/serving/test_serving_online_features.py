"""Serving's online-feature port: the injected reader is opened once, on first use; NaN
becomes null; a symbol the store does not know, a store that fails, and a service without
a store are each a 404 naming what is missing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import DataValidationError, NotFoundError
from serving.online_features import OnlineFeatures

KNOWN = datetime(2024, 3, 1, 21, tzinfo=UTC)  # the row's bar features became known


class _Store:
    """An online store holding the latest row of each symbol."""

    opened = 0

    def __init__(self, rows: dict[str, dict[str, float | None]]) -> None:
        type(self).opened += 1
        self.rows = rows

    def online_row(self, symbol: str) -> tuple[Mapping[str, float | None], datetime | None]:
        if symbol == "BOOM":
            raise RuntimeError("store offline")
        return self.rows.get(symbol, {}), None if symbol == "OLD" else KNOWN


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


def test_a_row_older_than_the_limit_is_refused_with_its_age() -> None:
    online = OnlineFeatures(lambda: _Store({"AAPL": {"rsi_14": 55.0}, "OLD": {"rsi_14": 1.0}}))
    limit = timedelta(hours=96)
    next_bar = datetime(2024, 3, 4, 5, tzinfo=UTC)  # Monday after Friday's close: 56 h
    assert online.latest("AAPL", at=next_bar, max_age=limit) == {"rsi_14": 55.0}
    at_limit = KNOWN + limit
    assert online.latest("AAPL", at=at_limit, max_age=limit) == {"rsi_14": 55.0}
    with pytest.raises(DataValidationError) as stale:
        online.latest("AAPL", at=at_limit + timedelta(seconds=1), max_age=limit)
    assert "stale: known since 2024-03-01 21:00 UTC, 96 h before the signal" in str(
        stale.value)
    assert stale.value.http_status == 422
    two_months = KNOWN + timedelta(days=61)
    with pytest.raises(DataValidationError, match="1464 h before the signal"):
        online.latest("AAPL", at=two_months, max_age=limit)
    assert online.latest("AAPL", at=two_months) == {"rsi_14": 55.0}  # no limit: no check
    assert online.latest("OLD", at=two_months, max_age=limit) == {"rsi_14": 1.0}  # no time
