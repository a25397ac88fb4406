"""Market-data sources picked by a type string, as Feast picks its back ends: a source is
a small frozen config whose `type` names it, and `market_data(config)` builds the
`MarketData` adapter for it.

| type | source | config |
|---|---|---|
| `sample` | real daily bars shipped in PyPI packages (5 stocks) | `adjustment` |
| `sp500` | the vendored 405-symbol S&P 500 daily set, 2013–2018 | — |
| `parquet`, `csv`, `files` | a user's bar file or folder | `path`, `repair`, `formats` |
| `alpaca` | Alpaca's historical bars | `AlpacaDataConfig` + `repair` |
| `store` | Tradewind's offline bar store | `bars_dir` (default: the data dir's) |

`parquet`, `csv` and `files` read files of both formats unless `formats` narrows them
(how the command line always behaved). A new source is one entry of `SOURCES`: its config
class (with a `type` literal) and the function that builds its adapter. Adapters are
imported when built, so naming a source costs nothing until it is used."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from core.clock import Clock
from core.errors import ConfigError
from core.settings import AlpacaCredentials, Settings
from trading.adapters.alpaca.config import AlpacaDataConfig
from trading.ports import MarketData


class SampleSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sample"] = "sample"
    adjustment: Literal["all", "raw"] = "all"


class SP500Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sp500"] = "sp500"


class FileSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["files", "parquet", "csv"] = "files"
    path: Path
    repair: bool = False
    formats: tuple[Literal["parquet", "csv"], ...] = ("parquet", "csv")


class AlpacaSource(AlpacaDataConfig):
    type: Literal["alpaca"] = "alpaca"
    repair: bool = False


class StoreSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["store"] = "store"
    bars_dir: Path | None = None  # None: the context's (the settings' data dir)


SourceConfig = SampleSource | SP500Source | FileSource | AlpacaSource | StoreSource


@dataclass(frozen=True)
class SourceContext:
    """What the composition root knows that some sources need."""

    bars_dir: Path | None = None
    credentials: AlpacaCredentials | None = None
    clock: Clock | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **extra: Any) -> SourceContext:
        return cls(bars_dir=settings.paths.bars_dir, **extra)


def _sample(config: SampleSource, context: SourceContext) -> MarketData:
    from trading.adapters.sample.data import SampleMarketData

    return SampleMarketData(config.adjustment)


def _sp500(config: SP500Source, context: SourceContext) -> MarketData:
    from trading.adapters.sp500.data import SP500MarketData

    return SP500MarketData()


def _files(config: FileSource, context: SourceContext) -> MarketData:
    from trading.adapters.files.data import FileMarketData

    return FileMarketData(config.path, repair=config.repair, formats=config.formats)


def _alpaca(config: AlpacaSource, context: SourceContext) -> MarketData:
    from trading.adapters.alpaca.data import AlpacaMarketData

    settings = AlpacaDataConfig.model_validate(config.model_dump(exclude={"type", "repair"}))
    return AlpacaMarketData(
        settings, context.credentials, context.clock, repair=config.repair
    )


def _store(config: StoreSource, context: SourceContext) -> MarketData:
    from trading.adapters.store.data import StoreMarketData

    folder = config.bars_dir or context.bars_dir
    if folder is None:
        raise ConfigError("the store source needs a bars_dir", where="market data")
    return StoreMarketData(folder)


@dataclass(frozen=True)
class SourceType:
    config: type[BaseModel]
    build: Callable[[Any, SourceContext], MarketData]


SOURCES: dict[str, SourceType] = {
    "sample": SourceType(SampleSource, _sample),
    "sp500": SourceType(SP500Source, _sp500),
    "parquet": SourceType(FileSource, _files),
    "csv": SourceType(FileSource, _files),
    "files": SourceType(FileSource, _files),
    "alpaca": SourceType(AlpacaSource, _alpaca),
    "store": SourceType(StoreSource, _store),
}


def source_config(spec: str | Mapping[str, Any] | BaseModel, **fields: Any) -> SourceConfig:
    """A validated source config from a type name plus fields (`source_config("csv",
    path=...)`), a mapping with a `type` (`{"type": "store"}`), or a config already built.
    A name that is no type but an existing file or folder means the files at that path."""
    if isinstance(spec, BaseModel):
        values: dict[str, Any] = {**spec.model_dump(), **fields}
    elif isinstance(spec, str):
        values = {"type": spec, **fields}
        if spec not in SOURCES and Path(spec).exists():
            values = {**fields, "type": "files", "path": Path(spec)}
    else:
        values = {**spec, **fields}
    kind = str(values.get("type"))
    entry = SOURCES.get(kind)
    if entry is None:
        raise ConfigError(
            f"unknown market-data source {kind!r}; choose one of {', '.join(SOURCES)} "
            "or give an existing file or folder",
            where="market data",
        )
    try:
        config = entry.config.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or kind}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"source {kind}: {problems}", where="market data") from None
    return config  # type: ignore[return-value]


def market_data(
    config: str | Mapping[str, Any] | BaseModel, context: SourceContext | None = None
) -> MarketData:
    """The `MarketData` adapter of a source (anything `source_config` takes)."""
    chosen = source_config(config)
    return SOURCES[chosen.type].build(chosen, context or SourceContext())
