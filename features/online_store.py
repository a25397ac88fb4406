"""The online feature store: each symbol's latest feature values, read in one call when a
decision has to be made. Its back end is a type string
(`settings.feature_store.online_store.type`):
- `sqlite` (default): Feast's SQLite online store under `<data_dir>/feast/online.db`,
  shared by every process on the machine (the model service reads what the pipeline
  materialized);
- `redis`: Feast's Redis online store (`connection_string` `host:port[,db=N]`), shared by
  every machine that reaches the server; read in one round trip (`features.online_redis`);
- `memory`: a dictionary in this process, for a single-process run (a replay, a test)
  that needs no Feast.

Every back end answers the same questions the same way (one conformance suite runs over
all of them): `write` the latest rows of a feature view, `push` fresh bar-feature rows
(both bar views), and `online_features(symbol)` — what serving's `OnlineFeatureReader`
port asks — gives every bar feature of the catalogue in catalogue order, NaN where
unknown, and `NotFoundError` for a symbol it has never seen; `online_row(symbol)` gives
the same values and the event time of the symbol's bar-feature row (when it became
known), so a reader can tell a stale row. A later write of a symbol replaces the earlier
one."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any, ClassVar

import pandas as pd

from core.errors import NotFoundError
from features.catalogue import BAR_FEATURES
from features.feast_repo import FeastRepo


class OnlineStore(ABC):
    is_feast_store: ClassVar[bool] = False  # Feast's own materialization can fill it

    @abstractmethod
    def write(self, view: str, rows: pd.DataFrame) -> int:
        """Store `rows` (symbol, event_timestamp and the view's columns, one per symbol)
        as the symbols' latest values of `view`; returns the number of rows."""

    @abstractmethod
    def push(self, rows: pd.DataFrame) -> None:
        """Fresh bar-feature rows (symbol, timestamp, event_timestamp and the catalogue's
        bar features) into both bar views."""

    def online_features(self, symbol: str) -> dict[str, float]:
        """Every bar feature of the symbol's latest row (see the module)."""
        return self.online_row(symbol)[0]

    @abstractmethod
    def online_row(self, symbol: str) -> tuple[dict[str, float], datetime | None]:
        """The symbol's latest bar features and when its bar-feature row became known."""


def missing_features(symbol: str) -> NotFoundError:
    return NotFoundError(
        f"no online features for {symbol}; write features and run "
        "`tradewind features materialize`",
        where="FeatureStore.online_features",
    )


class FeastOnlineStore(OnlineStore):
    """Feast's online store of a `FeastRepo` (SQLite or Redis, as its config says)."""

    is_feast_store = True

    def __init__(self, repo: FeastRepo) -> None:
        self.repo = repo

    def write(self, view: str, rows: pd.DataFrame) -> int:
        self.repo.store().write_to_online_store(view, df=rows)
        return len(rows)

    def push(self, rows: pd.DataFrame) -> None:
        from feast.data_source import PushMode

        from features.repo.definitions import BAR_PUSH

        self.repo.store().push(BAR_PUSH, rows, to=PushMode.ONLINE)

    def online_row(self, symbol: str) -> tuple[dict[str, float], datetime | None]:
        from features.repo.definitions import BAR_VIEW_FEATURES, feature_refs

        answer = self.repo.store().get_online_features(
            features=feature_refs(BAR_FEATURES), entity_rows=[{"symbol": symbol}]
        )
        result = answer.to_dict(include_event_timestamps=True)
        values = {name: result[name][0] for name in BAR_FEATURES}
        if all(value is None for value in values.values()):
            raise missing_features(symbol)
        seconds = result.get(f"{BAR_VIEW_FEATURES[0]}__ts", [0])[0]
        as_of = datetime.fromtimestamp(seconds, UTC) if seconds else None
        return {k: float("nan") if v is None else float(v) for k, v in values.items()}, as_of


class MemoryOnlineStore(OnlineStore):
    """The latest rows in a dictionary: view → symbol → values."""

    def __init__(self, repo: FeastRepo | None = None) -> None:
        self._views: dict[str, dict[str, dict[str, Any]]] = {}

    def write(self, view: str, rows: pd.DataFrame) -> int:
        table = self._views.setdefault(view, {})
        for row in rows.to_dict(orient="records"):
            table[str(row["symbol"])] = row
        return len(rows)

    def push(self, rows: pd.DataFrame) -> None:
        from features.repo.definitions import BAR_VIEW, MARKET_VIEW

        for view in (BAR_VIEW, MARKET_VIEW):
            self.write(view, rows)

    def online_row(self, symbol: str) -> tuple[dict[str, float], datetime | None]:
        from features.repo.definitions import BAR_VIEW, MARKET_VIEW, MARKET_VIEW_FEATURES

        market = set(MARKET_VIEW_FEATURES)
        bar_row = self._views.get(BAR_VIEW, {}).get(symbol) or {}
        market_row = self._views.get(MARKET_VIEW, {}).get(symbol) or {}
        values = {
            name: (market_row if name in market else bar_row).get(name) for name in BAR_FEATURES
        }
        if all(value is None for value in values.values()):
            raise missing_features(symbol)
        stamp = bar_row.get("event_timestamp")
        as_of = None if stamp is None else pd.Timestamp(stamp).to_pydatetime()
        return {name: _number(value) for name, value in values.items()}, as_of


def _number(value: object) -> float:
    if value is None:
        return math.nan
    return float(value)  # type: ignore[arg-type]

