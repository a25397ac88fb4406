"""Champion/challenger routing: which arm decides a signal, and whether the challenger
shadows it.

The arm is a pure function of the signal's id and the configured share: the first 8
bytes of sha256("tradewind-ab|<signal id>") read as a fraction in [0, 1); below the
share → challenger. No process state, no random seed, so the same signal lands on the
same arm across restarts, workers and machines, and re-asking about a signal never flips
its arm. With no challenger loaded everything goes to the champion. In shadow mode the
challenger also predicts on every champion decision; its outputs are logged, never
returned as the decision."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError
from serving.schemas import Variant

_SALT = b"tradewind-ab|"
_SCALE = float(1 << 64)


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    challenger_share: float = Field(0.20, ge=0, le=1)
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    variant: Variant
    shadow: bool  # run the challenger too, log it, do not act on it


def bucket(signal_id: str) -> float:
    """The signal's stable position in [0, 1)."""
    if not signal_id:
        raise ConfigError("cannot route a signal without an id", where="router")
    digest = hashlib.sha256(_SALT + signal_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


class ABRouter:
    """Decides the arm of each signal."""

    def __init__(self, config: RoutingConfig) -> None:
        self.config = config

    def route(self, signal_id: str, *, has_challenger: bool) -> Route:
        if not has_challenger:
            return Route(variant="champion", shadow=False)
        if bucket(signal_id) < self.config.challenger_share:
            return Route(variant="challenger", shadow=False)
        return Route(variant="champion", shadow=self.config.shadow)
