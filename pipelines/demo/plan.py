"""What the demo runs on and the learning loop's demo settings, as settings overrides for
its flows (JSON, shown in the Prefect UI).

The models learn from development symbols only (`symbols`); the engine trades held-out
symbols (`trade_symbols`, `core.universe`), so what the report shows is out of sample in
symbols as well as in time. Left empty, both are drawn from the source: `training_symbols`
development symbols spread over the alphabet, and every held-out symbol."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.settings import Settings
from models.tracker import absolute_tracking_uri

LOG_FILE = "demo.log"  # library warnings and logs, under the demo's folder in the data dir


class DemoPlan(BaseModel):
    """What the demo runs on and the loop's demo settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["sp500", "sample"] = "sp500"
    symbols: list[str] = Field(default_factory=list)  # training (development) symbols
    trade_symbols: list[str] = Field(default_factory=list)  # traded: held-out symbols
    training_symbols: int = Field(40, ge=1)  # how many development symbols, when not named
    history_start: str = "2013-02-08"  # training window start (earlier bars warm up)
    train_end: str = "2015-12-31"
    trade_start: str = "2016-01-01"
    trade_end: str = "2018-02-07"
    evaluation_years: list[int] = Field(default_factory=lambda: [2016, 2017])
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
        """A few symbols, one trading year, one retrain, one evaluation fold."""
        return cls(
            symbols=["AAPL", "GOOGL", "JPM", "XOM", "PG", "KO", "INTC", "GE"],
            trade_symbols=["CVX", "DIS", "JNJ", "TGT"],
            trade_end="2016-12-31",
            evaluation_years=[2016],
            max_retrains=1,
        )

    def resolved(self) -> DemoPlan:
        """The plan with its symbols named: unnamed ones drawn from the source's universe.
        Raises ConfigError when a training symbol is held out."""
        from core.errors import ConfigError
        from core.universe import is_held_out, split_universe
        from monitoring.evaluation import spread_sample
        from trading.adapters.sample.data import STOCKS
        from trading.adapters.sp500.data import SP500MarketData

        if leaked := [s for s in self.symbols if is_held_out(s)]:
            raise ConfigError(f"{', '.join(leaked)} are held out: the demo trades them, never "
                              "trains on them", where="demo")
        if self.symbols and self.trade_symbols:
            return self
        universe = SP500MarketData().stocks() if self.source == "sp500" else list(STOCKS)
        development, held_out = split_universe(universe)
        return self.model_copy(update={"trade_symbols": self.trade_symbols or held_out,
                                       "symbols": self.symbols
                                       or spread_sample(development, self.training_symbols)})

    @property
    def all_symbols(self) -> list[str]:
        return list(dict.fromkeys([*self.symbols, *self.trade_symbols]))

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
            "symbols": self.all_symbols,
            "models": {
                "challenger_share": self.challenger_share,
                "retrain_every_trades": self.retrain_every_trades,
                "promotion_margin": self.promotion_margin,
                "min_trades_per_arm": self.min_trades_per_arm,
            },
            "serving": {"endpoint": endpoint, "timeout_seconds": 5.0},
        }
