"""Search spaces: what an optimizer may vary in a strategy's config. Each strategy's config
declares its own (`StrategyConfig.search_space`), so the optimizer reads the strategy, not
a table of its own; the ranges are plain data, sampled by whatever search runs them.

A space's coordinates need not be the config's fields: momentum searches the gap between
its EMAs so that every sample is a valid config (`fast < slow`). `from_search` turns a
sample into the config, `search_values` a config back into a sample, and `tuned_fields`
names the config fields a search sets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True, slots=True)
class IntRange:
    name: str
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class FloatRange:
    name: str
    low: float
    high: float


SearchParameter = IntRange | FloatRange


class StrategyConfig(BaseModel):
    """A strategy's frozen config (unknown keys refused) with its search space."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    search_space: ClassVar[tuple[SearchParameter, ...]] = ()

    @classmethod
    def tuned_fields(cls) -> tuple[str, ...]:
        return tuple(parameter.name for parameter in cls.search_space)

    @classmethod
    def from_search(cls, values: Mapping[str, Any]) -> Self:
        """The config a sample of the search space stands for."""
        return cls(**{parameter.name: values[parameter.name] for parameter in cls.search_space})

    def search_values(self) -> dict[str, Any]:
        """This config as a sample of its search space."""
        return {parameter.name: getattr(self, parameter.name) for parameter in self.search_space}

    def tuned(self) -> dict[str, Any]:
        """The fields a search sets, with this config's values."""
        return {name: getattr(self, name) for name in self.tuned_fields()}
