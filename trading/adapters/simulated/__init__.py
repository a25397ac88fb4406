"""The in-process simulated exchange: one matching engine (also behind the local paper
exchange) and the `SimulatedBroker` adapter over it."""

from trading.adapters.simulated.config import SimulatedExchangeConfig
from trading.adapters.simulated.execution import SimulatedBroker
from trading.adapters.simulated.matching import MatchingEngine

__all__ = ["MatchingEngine", "SimulatedBroker", "SimulatedExchangeConfig"]
