"""The Redis online store (`feature_store.online_store.type: redis`): Feast's Redis
online store, written through Feast (materialization, pushes, its out-of-order guard),
read on the decision's hot path in ONE round trip.

Feast keeps every feature view of an entity in one Redis hash (key: the serialized
entity key + the project name; field: murmur3 of `view:feature`; value: a serialized
`ValueProto`). `online_row(symbol)` asks that hash for every bar feature of both bar
views with one HMGET and decodes the values itself, instead of Feast's generic path (a
registry lookup, one request per view, response objects): the same answer (the
conformance suite checks it against Feast's own read) at a fraction of the cost
(benchmarks/bench_features_online.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from core.errors import ConfigError
from features.catalogue import BAR_FEATURES
from features.feast_repo import PROJECT, FeastRepo
from features.online_store import FeastOnlineStore, missing_features

ENTITY_KEY_VERSION = 3  # `entity_key_serialization_version` of features/repo's template


class RedisOnlineStore(FeastOnlineStore):
    """Written through Feast; read straight from Feast's Redis layout."""

    def __init__(self, repo: FeastRepo) -> None:
        super().__init__(repo)
        if not repo.online.connection_string:
            raise ConfigError("the redis online store needs a connection_string "
                              "(host:port[,db=N])", where="feature_store")
        self._client: Any = None
        self._fields: list[bytes] = []

    def _connect(self) -> Any:
        from feast.infra.online_stores.helpers import _mmh3
        from feast.infra.online_stores.redis import RedisOnlineStore as FeastRedis
        from redis import Redis

        from features.repo.definitions import BAR_VIEW, MARKET_VIEW, MARKET_VIEW_FEATURES

        nodes, options = FeastRedis._parse_connection_string(
            str(self.repo.online.connection_string))
        market = set(MARKET_VIEW_FEATURES)
        self._fields = [_mmh3(f"{MARKET_VIEW if name in market else BAR_VIEW}:{name}")
                        for name in BAR_FEATURES]
        self._fields.append(f"_ts:{BAR_VIEW}".encode())  # when the bar row became known
        self._client = Redis(host=nodes[0]["host"], port=int(nodes[0]["port"]), **options)
        return self._client

    def online_row(self, symbol: str) -> tuple[dict[str, float], datetime | None]:
        from feast.infra.online_stores.helpers import _redis_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from google.protobuf.timestamp_pb2 import Timestamp

        client = self._client or self._connect()
        key = _redis_key(
            PROJECT,
            EntityKey(join_keys=["symbol"], entity_values=[Value(string_val=symbol)]),
            entity_key_serialization_version=ENTITY_KEY_VERSION,
        )
        *stored, stamp = client.hmget(key, self._fields)
        values: dict[str, float] = {}
        known = 0
        for name, raw in zip(BAR_FEATURES, stored, strict=True):
            value = Value.FromString(raw) if raw else None
            if value is not None and value.WhichOneof("val") is not None:
                values[name] = float(value.double_val)
                known += 1
            else:
                values[name] = math.nan
        if not known:
            raise missing_features(symbol)
        seconds = Timestamp.FromString(stamp).seconds if stamp else 0
        return values, datetime.fromtimestamp(seconds, UTC) if seconds else None
