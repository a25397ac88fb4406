"""What the demo runs on and the learning loop's demo settings, as settings overrides for
its flows (JSON, shown in the Prefect UI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.settings import Settings
from models.tracker import absolute_tracking_uri


class DemoPlan(BaseModel):
    """What the demo runs on and the loop's demo settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbols: list[str] = Field(default_factory=lambda: ["AAPL", "MSFT", "IBM", "GOOG"])
    history_start: str = "2001-01-01"  # training window start (earlier bars warm up)
    train_end: str = "2007-12-31"
    trade_start: str = "2008-01-01"
    trade_end: str = "2013-12-31"
    win_probability_gate: float = Field(0.50, ge=0, le=1)
    challenger_share: float = Field(0.5, ge=0, le=1)
    retrain_every_trades: int = Field(10, ge=1)
    retrain_schedule_months: int = Field(6, ge=1)  # scheduled retrain cadence (replay time)
    max_retrains: int = Field(2, ge=1)
    promotion_margin: float = Field(0.05, ge=0)
    ab_every_months: int = Field(3, ge=1)
    min_trades_per_arm: int = Field(2, ge=2)
    max_trades_per_arm: int = Field(2, ge=2)
    alpha: float = Field(0.05, gt=0, lt=1)

    @classmethod
    def full(cls) -> DemoPlan:
        return cls()

    @classmethod
    def quick(cls) -> DemoPlan:
        """Fewer training and trading years, one retrain early in the trading window."""
        return cls(
            history_start="2004-01-01",
            train_end="2008-12-31",
            trade_start="2009-01-01",
            trade_end="2011-12-31",
            retrain_schedule_months=6,
            max_retrains=1,
        )

    def overrides(self, settings: Settings, demo_dir: Path, endpoint: str | None) -> dict[str, Any]:
        """Settings overrides for the demo's flows (JSON, shown in the Prefect UI)."""
        paths = {
            "data_dir": str(settings.paths.data_dir.resolve()),
            "mlflow_tracking_uri": absolute_tracking_uri(settings.paths.mlflow_tracking_uri),
            "mlflow_artifact_root": str(settings.paths.mlflow_artifact_root.resolve()),
            "journal_url": f"sqlite:///{(demo_dir / 'journal.db').resolve()}",
            "reports_dir": str(settings.paths.reports_dir.resolve()),
        }
        return {
            "paths": paths,
            "symbols": list(self.symbols),
            "models": {
                "win_probability_gate": self.win_probability_gate,
                "challenger_share": self.challenger_share,
                "retrain_every_trades": self.retrain_every_trades,
                "promotion_margin": self.promotion_margin,
                "min_trades_per_arm": self.min_trades_per_arm,
            },
            "serving": {"endpoint": endpoint, "timeout_seconds": 5.0},
        }
