"""`/decide` without features never decides on a stale online row: the real service over
a real Feast store refuses a signal two months after the symbol's latest row with a 422
that says how old the row is, and decides on the next bar's signal as before."""

from __future__ import annotations

import httpx
import pandas as pd

from tests.integration.serving.harness import Server, TrainedModels, bearer


def test_a_stale_online_row_is_refused_and_a_fresh_one_decides(
    serving_server: Server, trained_models: TrainedModels
) -> None:
    features = trained_models.features
    latest = pd.Timestamp(features.loc[features["symbol"] == "MSFT", "timestamp"].max())

    def decide(at: pd.Timestamp) -> httpx.Response:
        signal = {"symbol": "MSFT", "side": "buy", "strategy": "momentum",
                  "timestamp": at.isoformat(), "price": 27.0}
        return httpx.post(f"{serving_server.url}/decide", json={"signal": signal},
                          headers=bearer(), timeout=30)

    assert decide(latest + pd.Timedelta(days=1)).status_code == 200
    stale = decide(latest + pd.Timedelta(days=61))
    assert stale.status_code == 422, stale.text
    assert "stale" in stale.text
    assert "tradewind features materialize" in stale.text
