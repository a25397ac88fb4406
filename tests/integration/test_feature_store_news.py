"""Headlines through the real alpaca-py NewsClient against a local server speaking
Alpaca's /v1beta1/news, then scored into sentiment features with VADER."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from core.errors import AuthenticationError
from core.settings import AlpacaCredentials
from features.compute import compute_feature_set
from tests.integration.alpaca_news_server import news_app, serving
from trading.adapters.alpaca.news import AlpacaNews, AlpacaNewsConfig

pytestmark = pytest.mark.integration
KEY, SECRET = "news-key", "news-secret-0123456789"


def article(i: int, when: str, symbols: list[str], headline: str) -> dict[str, object]:
    return {
        "id": 1000 + i,
        "headline": headline,
        "author": "Tradewind tests",
        "created_at": when,
        "updated_at": when,
        "summary": "",
        "content": "",
        "url": f"https://example.invalid/{i}",
        "images": [],
        "symbols": symbols,
        "source": "benzinga",
    }


ARTICLES = [
    article(0, "2016-05-18T13:00:00Z", ["AAPL"], "Apple shares surge after strong iPhone sales"),
    article(1, "2016-05-19T14:00:00Z", ["AAPL", "MSFT"], "Apple and Microsoft face lawsuit"),
    article(2, "2016-05-19T15:30:00Z", ["AAPL"], "Apple announces great new products"),
    article(3, "2016-05-20T15:00:00Z", ["XOM"], "Exxon profit falls, shares plunge"),
] + [
    article(10 + i, f"2016-05-1{i % 9}T1{i % 10}:00:00Z", ["MSFT"], f"Microsoft note {i}")
    for i in range(60)  # more than one page of 50
]


def fetch(url: str, symbols: list[str]) -> pd.DataFrame:
    news = AlpacaNews(
        AlpacaNewsConfig(data_url=url),
        AlpacaCredentials(ALPACA_API_KEY=KEY, ALPACA_SECRET_KEY=SECRET),
    )
    return news.headlines(
        symbols, datetime(2016, 5, 1, tzinfo=UTC), datetime(2016, 5, 31, tzinfo=UTC)
    )


def test_headlines_through_the_sdk_become_sentiment_features(
    sp500_daily: pd.DataFrame,
) -> None:
    app = news_app(ARTICLES, KEY, SECRET)
    with serving(app) as url:
        frame = fetch(url, ["AAPL", "XOM", "MSFT"])
    assert len(app.state.requests_seen) >= 2  # the SDK followed next_page_token
    assert (frame["symbol"] == "MSFT").sum() == 61
    aapl = frame.loc[frame["symbol"] == "AAPL"]
    assert aapl["headline"].tolist()[0].startswith("Apple shares surge")

    bars = sp500_daily.loc[
        sp500_daily["symbol"].isin(["AAPL", "XOM"])
        & sp500_daily["timestamp"].between("2016-01-01", "2016-05-31")
    ]
    features = compute_feature_set(bars, news=frame).frame.set_index(["symbol", "timestamp"])
    day = features.loc[("AAPL", pd.Timestamp("2016-05-19", tz="UTC"))]
    # Known at the 2016-05-19 close: the two headlines of that day within 24 h, three in 5 d.
    assert day["news_count_1d"] == 2
    assert day["news_count_5d"] == 3
    assert day["sent_available"] == 1
    assert -1 <= day["sent_mean_1d"] <= 1
    assert features.loc[("XOM", pd.Timestamp("2016-05-19", tz="UTC")), "news_count_1d"] == 0
    assert np.isnan(features.loc[("XOM", pd.Timestamp("2016-05-19", tz="UTC")), "sent_mean_1d"])
    positive = features.loc[("AAPL", pd.Timestamp("2016-05-18", tz="UTC")), "sent_mean_1d"]
    assert positive > 0.3


def test_without_a_news_source_the_features_are_missing_and_flagged(
    sp500_daily: pd.DataFrame,
) -> None:
    bars = sp500_daily.loc[sp500_daily["symbol"] == "AAPL"].head(50)
    features = compute_feature_set(bars).frame
    assert features["sent_available"].eq(0).all()
    assert features[["news_count_1d", "sent_mean_5d", "earnings_days_to"]].isna().all().all()
    assert features["earnings_available"].eq(0).all()


def test_wrong_keys_are_an_authentication_error() -> None:
    with serving(news_app(ARTICLES, KEY, SECRET)) as url:
        news = AlpacaNews(
            AlpacaNewsConfig(data_url=url),
            AlpacaCredentials(ALPACA_API_KEY="wrong", ALPACA_SECRET_KEY="nope-nope"),
        )
        with pytest.raises(AuthenticationError, match="403"):
            news.headlines(["AAPL"], datetime(2016, 5, 1, tzinfo=UTC), datetime.now(UTC))
