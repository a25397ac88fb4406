"""One conformance suite for the `MarketData` port, run over every source type of
`trading.adapters.registry`: the embedded sample, parquet files, CSV files, the offline
bar store, and Alpaca through the real alpaca-py SDK against the local
`/v2/stocks/bars` server. Every source holds the same real bars (AAPL, MSFT and the
S&P 500 index, 2008-2009, from the embedded sample) and must answer the same way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from core.bars import time_bound
from core.errors import DataSourceError
from core.settings import AlpacaCredentials
from core.types import BAR_COLUMNS
from features.bar_store import BarStore
from tests.integration.local_server import serve_app
from trading.adapters.alpaca.data import AlpacaMarketData
from trading.adapters.paper_exchange.data_api import DataApiConfig, build_data_app
from trading.adapters.registry import SourceContext, market_data
from trading.adapters.sample.data import SampleMarketData
from trading.ports import MarketData

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT", "SPX"]
SOURCE_TYPES = ["sample", "parquet", "csv", "store", "alpaca"]
CREDENTIALS = AlpacaCredentials(ALPACA_API_KEY="conformance", ALPACA_SECRET_KEY="conformance")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return SampleMarketData().history(SYMBOLS, "2008-01-01", "2009-12-31")


def _write_files(folder: Path, bars: pd.DataFrame, suffix: str) -> None:
    folder.mkdir(parents=True)
    for symbol, rows in bars.groupby("symbol"):
        frame = rows.assign(timestamp=rows["timestamp"].map(lambda t: t.isoformat()))
        if suffix == "csv":
            frame.to_csv(folder / f"{symbol}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{symbol}.parquet", index=False)


@pytest.fixture(scope="module", params=SOURCE_TYPES)
def source(
    request: pytest.FixtureRequest,
    reference: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MarketData]:
    """The same bars behind each source type."""
    kind = request.param
    folder = tmp_path_factory.mktemp(f"source-{kind}")
    if kind == "sample":
        yield market_data("sample")
    elif kind in ("parquet", "csv"):
        _write_files(folder / "bars", reference, kind)
        yield market_data({"type": kind, "path": folder / "bars", "formats": [kind]})
    elif kind == "store":
        BarStore(folder / "bars").write(reference)
        yield market_data("store", SourceContext(bars_dir=folder / "bars"))
    else:
        app = build_data_app(reference, DataApiConfig(max_page_size=300))
        with serve_app(app) as url:
            config = {"type": "alpaca", "data_url": url, "retry_wait_seconds": 0.01}
            yield market_data(config, SourceContext(credentials=CREDENTIALS))


def _inside(frame: pd.DataFrame, symbols: list[str], start: str, end: str) -> pd.DataFrame:
    lower, upper = time_bound(start), time_bound(end, end=True)
    keep = frame["symbol"].isin(symbols) & (frame["timestamp"] >= lower)
    return frame[keep & (frame["timestamp"] <= upper)].reset_index(drop=True)


def test_bars_have_the_schema_sorted_and_unique(source: MarketData) -> None:
    bars = source.history(["MSFT", "AAPL"], "2009-01-01", "2009-06-30")
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert str(bars["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert all(str(bars[c].dtype) == "float64" for c in BAR_COLUMNS[2:])
    assert bars.equals(bars.sort_values(["symbol", "timestamp"], ignore_index=True))
    assert not bars.duplicated(["symbol", "timestamp"]).any()


def test_every_source_gives_the_same_bars(source: MarketData, reference: pd.DataFrame) -> None:
    got = source.history(["AAPL", "SPX"], "2008-03-03", "2009-11-30")
    expected = _inside(reference, ["AAPL", "SPX"], "2008-03-03", "2009-11-30")
    assert len(expected) > 800
    pd.testing.assert_frame_equal(got, expected)


def test_bounds_are_inclusive_new_york_days(source: MarketData, reference: pd.DataFrame) -> None:
    got = source.history(["MSFT"], "2009-03-02", "2009-03-06")
    assert [t.strftime("%Y-%m-%d") for t in got["timestamp"].dt.tz_convert("America/New_York")] == [
        "2009-03-02", "2009-03-03", "2009-03-04", "2009-03-05", "2009-03-06",
    ]  # fmt: skip
    assert source.history(["MSFT"], "2009-03-07", "2009-03-08").empty  # a weekend


def test_the_check_carries_the_same_bars(source: MarketData) -> None:
    check = source.history_check(["AAPL"], "2009-01-01", "2009-01-31")
    pd.testing.assert_frame_equal(check.bars, source.history(["AAPL"], "2009-01-01", "2009-01-31"))
    assert check.repairs == []  # clean real bars: nothing to repair


def test_all_symbols_or_a_clear_refusal(source: MarketData, reference: pd.DataFrame) -> None:
    if isinstance(source, AlpacaMarketData):  # Alpaca cannot list its symbols: it says so
        with pytest.raises(DataSourceError, match="needs the symbols"):
            source.history(None, "2009-01-01", "2009-01-31")
        return
    everything = source.history(None, "2009-01-01", "2009-01-31")
    assert set(SYMBOLS) <= set(everything["symbol"])
    mine = everything[everything["symbol"].isin(SYMBOLS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, _inside(reference, SYMBOLS, "2009-01-01", "2009-01-31"))
