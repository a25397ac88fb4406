"""The engine API's configuration: where it listens, the token, how fresh the page is,
when heartbeats are stale, and the retrain trigger's cadence."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from core.errors import ConfigError
from core.network import is_loopback

TOKEN_ENV = "TRADEWIND_API_TOKEN"
DEFAULT_PORT = 8780


class EngineApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)  # 0 picks a free port
    # Required on every POST, and on every request when bound beyond loopback. Filled from
    # TRADEWIND_API_TOKEN at the edge; never logged.
    token: SecretStr | None = None
    refresh_seconds: float = Field(1.0, gt=0, le=2.0)  # the page's update interval
    stale_heartbeat_seconds: float = Field(30.0, gt=0)
    status_refresh_seconds: float = Field(0.5, ge=0)  # broker reads for the API, at most
    retrain_every_trades: int = Field(100, ge=1)
    retrain_deployment: str = "retrain/after-close"
    recent_limit: int = Field(200, ge=1, le=10_000)  # rows a list endpoint returns at most
    # Where the running engine writes its address (`tradewind ui` and `ctl` read it).
    address_file: Path | None = None

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> EngineApiConfig:
        if not is_loopback(self.host) and self.token is None:
            raise ConfigError(
                f"the engine API would listen on {self.host}, beyond loopback, without a "
                f"token: set {TOKEN_ENV} (or bind it to 127.0.0.1)",
                where="engine api",
            )
        return self

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def url(self, port: int | None = None) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port or self.port}"


def local_token(path: Path) -> SecretStr:
    """The token of a loopback engine started without TRADEWIND_API_TOKEN: read from
    `path`, else made once and written there readable by its owner only (like a
    notebook server's), so `tradewind ctl` and the MCP server on this machine find it."""
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return SecretStr(token)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.touch(mode=0o600)
    temporary.write_text(token, encoding="utf-8")
    temporary.replace(path)
    return SecretStr(token)


def engine_address(address_file: Path) -> str | None:
    """The running engine's API address, as it wrote it at start-up (None: not running)."""
    import json
    import os

    try:
        record = json.loads(address_file.read_text(encoding="utf-8"))
        os.kill(int(record["pid"]), 0)  # still alive?
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(record["url"])
