"""`tradewind demo`: the end-to-end run on the embedded real data (ingest → collect trades
→ train → serve → trade with retraining and A/B → report). Its inputs are checked here,
before the demo clears its previous run."""

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
            None, "--symbols",
            metavar=SYMBOLS_METAVAR,
            help=f"Stocks to trade, {SYMBOLS_HELP} (default: AAPL,MSFT,IBM,GOOG).",
        ),
        quick: bool = typer.Option(
            False, "--quick/--full",
            help="Fewer years and a single retrain (the test suite runs this).",
        ),
        port: int = typer.Option(0, "--port", min=0, help="Model service port (0: a free one)."),
    ) -> None:
        """Run the whole platform offline on the sample data and write reports/demo/."""
        from pipelines.demo.plan import DemoPlan
        from pipelines.demo.run import run_demo

        plan = DemoPlan.quick() if quick else DemoPlan.full()
        chosen = parse_symbols(symbols)
        if chosen:
            plan = plan.model_copy(update={"symbols": chosen})
        check_demo_symbols(plan)
        run_demo(plan, port=port or None)


def check_demo_symbols(plan: DemoPlan) -> None:
    """Every symbol of the plan is a sample stock with bars in both the training window
    and the trading window; else one ConfigError that names the windows."""
    from trading.adapters.sample.data import STOCKS, SampleMarketData

    unknown = [s for s in plan.symbols if s not in STOCKS]
    if unknown:
        raise ConfigError(
            f"--symbols {','.join(unknown)}: the demo's sample data has only "
            f"{', '.join(STOCKS)}",
            where="demo",
        )
    bars = SampleMarketData().history(list(STOCKS))
    spans = {
        symbol: (f"{stamps.min():%Y-%m-%d}", f"{stamps.max():%Y-%m-%d}")
        for symbol, stamps in bars.groupby("symbol")["timestamp"]
    }
    eligible = [
        symbol for symbol, (first, last) in spans.items()
        if first <= plan.train_end and last >= plan.trade_start
    ]
    outside = [symbol for symbol in plan.symbols if symbol not in eligible]
    if outside:
        shown = ", ".join(f"{s} has bars {spans[s][0]} → {spans[s][1]}" for s in outside)
        raise ConfigError(
            f"--symbols: {shown}, outside the demo's training window {plan.history_start} → "
            f"{plan.train_end} or its trading window from {plan.trade_start}; pick from "
            f"{', '.join(eligible)}",
            where="demo",
        )
