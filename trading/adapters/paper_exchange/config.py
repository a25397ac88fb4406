"""Configuration of the local Alpaca-compatible paper exchange."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from core.network import require_secret_beyond_loopback
from trading.adapters.simulated.config import SimulatedExchangeConfig


class PaperExchangeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)  # 0 lets the OS pick a free port
    exchange: SimulatedExchangeConfig = SimulatedExchangeConfig()
    # Replay pace: bar steps per second; 0 replays only when told to (POST /admin/advance).
    bars_per_second: float = Field(0.0, ge=0)
    symbols: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None
    timeframe: str = "1Day"
    # Replay each bar as four trade prints matched one at a time (`ticks.py`), so an
    # order sent after a print fills at the next print, within the bar.
    intrabar_prints: bool = False
    # The command journal (SQLite); None keeps state in memory only.
    state_path: Path | None = None
    # When set, requests must carry exactly these keys; otherwise any non-empty pair is
    # accepted, as a local development exchange should.
    api_key: SecretStr | None = None
    secret_key: SecretStr | None = None

    @model_validator(mode="after")
    def _keys_beyond_loopback(self) -> PaperExchangeConfig:
        require_secret_beyond_loopback(
            self.host, self.api_key is not None and self.secret_key is not None,
            what="the paper exchange",
            hint="api keys (ALPACA_API_KEY, ALPACA_SECRET_KEY and --require-keys)",
            where="paper-exchange",
        )
        return self
