"""The model service as BentoML runs it (`tradewind serve`, `bentoml serve
pipelines.serve:TradewindService`, the Bento of `bentofile.yaml`): serving's
`DecisionService` wired to Feast's online store for requests that leave the features out.

Declared here, in the composition root, because it is the one place that may know both
`serving` and `features`. Importing this module declares the service (BentoML needs it
at module level); nothing else happens until a worker builds it."""

from __future__ import annotations

import bentoml

from serving.online_features import OnlineFeatureReader
from serving.service import SERVICE_CONFIG, DecisionService, add_middleware, service_workers


def feast_online_reader() -> OnlineFeatureReader:
    """Feast's online store under the configured paths (opened in the worker, on first use:
    only a request without features needs Feast there)."""
    from core.settings import load_settings
    from features.store import FeatureStore

    settings = load_settings()
    return FeatureStore(settings.paths, settings.feature_store)


@bentoml.service(name="tradewind", workers=service_workers(), **SERVICE_CONFIG)
class TradewindService(DecisionService):
    """The Tradewind model service, reading missing features from Feast."""

    def __init__(self) -> None:
        super().__init__(online_features=feast_online_reader)


add_middleware(TradewindService)
