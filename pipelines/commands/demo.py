"""`tradewind demo`: the end-to-end run on the embedded real data (ingest → collect trades
→ train on development symbols → serve → trade the held-out symbols with retraining and
A/B → walk-forward evaluation → report). Its inputs are checked here, before the demo
clears its previous run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from core.errors import ConfigError
from pipelines.commands.options import SYMBOLS_HELP, SYMBOLS_METAVAR, parse_symbols

if TYPE_CHECKING:
    from pipelines.demo.plan import DemoPlan


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""

    @app.command()
    def demo(
        symbols: list[str] | None = typer.Option(
            None, "--symbols", metavar=SYMBOLS_METAVAR,
            help=f"Stocks to trade, {SYMBOLS_HELP} (default: every held-out symbol).",
        ),
        quick: bool = typer.Option(
            False, "--quick/--full",
            help="A few symbols, one year, one retrain, one fold (tests).",
        ),
        port: int = typer.Option(0, "--port", min=0, help="Model service port (0: a free one)."),
    ) -> None:
        """Run the whole platform offline on the embedded S&P 500 set: train on development
        symbols, trade the held-out ones through the model service, evaluate the policy
        walk-forward, and write reports/demo/."""
        from pipelines.demo.plan import DemoPlan
        from pipelines.demo.run import run_demo
        from pipelines.runtime import sigterm_as_ctrl_c

        plan = DemoPlan.quick() if quick else DemoPlan.full()
        chosen = parse_symbols(symbols)
        if chosen:
            plan = plan.model_copy(update={"trade_symbols": chosen})
            check_trade_symbols(plan)
        with sigterm_as_ctrl_c():  # its model service stops on SIGTERM as on Ctrl-C
            run_demo(plan, port=port or None)


def check_trade_symbols(plan: DemoPlan) -> None:
    """Every symbol to trade is in the demo's source with bars in its trading window;
    else one ConfigError that names the window and what to pick instead."""
    from trading.adapters.sample.data import SampleMarketData
    from trading.adapters.sp500.data import SP500MarketData

    data = SP500MarketData() if plan.source == "sp500" else SampleMarketData()
    known = set(data.symbols())
    unknown = [s for s in plan.trade_symbols if s not in known]
    if unknown:
        raise ConfigError(
            f"--symbols {','.join(unknown)}: not in the demo's {plan.source} data "
            f"({len(known)} symbols, e.g. {', '.join(sorted(known)[:5])})",
            where="demo",
        )
    bars = data.history(plan.trade_symbols, start=plan.trade_start, end=plan.trade_end)
    traded = set(bars["symbol"])
    outside = [s for s in plan.trade_symbols if s not in traded]
    if outside:
        raise ConfigError(
            f"--symbols {','.join(outside)}: no {plan.source} bars in the demo's trading "
            f"window {plan.trade_start} → {plan.trade_end} (it trains on "
            f"{plan.history_start} → {plan.train_end})",
            where="demo",
        )
