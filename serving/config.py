"""The model service's configuration: one frozen object built at start-up from
Tradewind's settings (tracking URI, A/B share, API token, workers) plus the few
serving-only knobs, which come from the environment because `bentoml serve` starts the
service without arguments:

- `TRADEWIND_AB_SHADOW` (`true`/`false`, default false): the challenger also predicts on
  champion traffic; logged, never acted on.
- `TRADEWIND_DECISION_LOG` (a SQLite file path, default `<data_dir>/decisions.db`, or a
  SQLAlchemy URL such as `postgresql+psycopg://…`): the decision log.
- `TRADEWIND_DECISION_LOG_FLUSH_SECONDS` (default 0.05): how long the log writer gathers
  rows into one transaction.
- `TRADEWIND_RELOAD_INTERVAL_SECONDS` (default 30; 0 turns polling off): how often the
  registry's aliases are checked for a hot reload."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from core.errors import ConfigError
from core.settings import Settings, load_settings
from serving.router import RoutingConfig

SHADOW_ENV = "TRADEWIND_AB_SHADOW"
DECISION_LOG_ENV = "TRADEWIND_DECISION_LOG"
RELOAD_INTERVAL_ENV = "TRADEWIND_RELOAD_INTERVAL_SECONDS"
FLUSH_ENV = "TRADEWIND_DECISION_LOG_FLUSH_SECONDS"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def decision_log_path(settings: Settings) -> Path | str:
    """Where the service logs its decisions (`TRADEWIND_DECISION_LOG`: a file path or a
    database URL, else `<data_dir>/decisions.db`); the flows read it from there."""
    named = os.environ.get(DECISION_LOG_ENV)
    if named and "://" in named:
        return named  # a URL stays a string: a Path would fold its `//`
    return Path(named or settings.paths.data_dir / "decisions.db")


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str
    decision_log: Path | str
    routing: RoutingConfig = RoutingConfig()
    decision_log_flush_seconds: float = Field(0.05, ge=0)
    reload_interval_seconds: float = Field(30.0, ge=0)
    api_token: SecretStr | None = None
    # An online feature row older than this before the signal is refused (0: no check).
    max_feature_age_hours: float = Field(96.0, ge=0)

    @property
    def max_feature_age(self) -> timedelta | None:
        hours = self.max_feature_age_hours
        return timedelta(hours=hours) if hours > 0 else None

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> ServiceConfig:
        settings = settings or load_settings()
        try:
            return cls(
                tracking_uri=settings.paths.mlflow_tracking_uri,
                decision_log=decision_log_path(settings),
                routing=RoutingConfig(
                    challenger_share=settings.models.challenger_share,
                    shadow=_flag(SHADOW_ENV),
                ),
                decision_log_flush_seconds=_seconds(FLUSH_ENV, 0.05),
                reload_interval_seconds=_seconds(RELOAD_INTERVAL_ENV, 30.0),
                api_token=settings.serving.api_token,
                max_feature_age_hours=settings.serving.max_feature_age_hours,
            )
        except (ValidationError, ValueError) as exc:
            raise ConfigError(f"invalid serving configuration: {exc}", where="serving") from None


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{name} must be a number of seconds >= 0, got {raw!r}",
                          where="serving")
    return value


def _flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}", where="serving")
