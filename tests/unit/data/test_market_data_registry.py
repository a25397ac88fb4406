"""Market-data sources picked by a type string (`trading.adapters.registry`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import AlpacaCredentials
from trading.adapters.alpaca.data import AlpacaMarketData
from trading.adapters.files.data import FileMarketData
from trading.adapters.registry import (
    SOURCES,
    AlpacaSource,
    FileSource,
    SampleSource,
    SourceContext,
    StoreSource,
    market_data,
    source_config,
)
from trading.adapters.sample.data import SampleMarketData
from trading.adapters.store.data import StoreMarketData


def test_a_type_name_with_fields_or_a_mapping_is_a_config() -> None:
    assert source_config("sample") == SampleSource()
    assert source_config({"type": "csv", "path": "x.csv"}) == FileSource(
        type="csv", path=Path("x.csv")
    )
    alpaca = source_config("alpaca", data_url="http://127.0.0.1:1", feed="sip", repair=True)
    assert isinstance(alpaca, AlpacaSource)
    assert (alpaca.data_url, alpaca.feed, alpaca.repair) == ("http://127.0.0.1:1", "sip", True)
    assert source_config(source_config("store"), bars_dir="b") == StoreSource(bars_dir=Path("b"))


def test_an_existing_path_means_the_files_there(tmp_path: Path) -> None:
    (tmp_path / "AAPL.csv").write_text("date,open,high,low,close,volume\n")
    config = source_config(str(tmp_path), repair=True)
    assert config == FileSource(type="files", path=tmp_path, repair=True)


def test_unknown_types_and_fields_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown market-data source 'nope'.*sample"):
        source_config("nope")
    with pytest.raises(ConfigError, match="source parquet: path"):
        source_config("parquet")
    with pytest.raises(ConfigError, match="colour"):
        source_config("sample", colour="red")


def test_each_type_builds_its_adapter(tmp_path: Path) -> None:
    assert isinstance(market_data("sample"), SampleMarketData)
    files = market_data({"type": "parquet", "path": tmp_path, "formats": ["parquet"]})
    assert isinstance(files, FileMarketData)
    assert files.suffixes == (".parquet",)
    store = market_data("store", SourceContext(bars_dir=tmp_path))
    assert isinstance(store, StoreMarketData)
    assert store.symbols() == []
    credentials = AlpacaCredentials(ALPACA_API_KEY="k", ALPACA_SECRET_KEY="s")
    alpaca = market_data(
        {"type": "alpaca", "data_url": "http://127.0.0.1:1"}, SourceContext(credentials=credentials)
    )
    assert isinstance(alpaca, AlpacaMarketData)
    assert alpaca.config.data_url == "http://127.0.0.1:1"
    with pytest.raises(ConfigError, match="bars_dir"):
        market_data("store")
    assert set(SOURCES) == {"sample", "sp500", "parquet", "csv", "files", "alpaca", "store"}
