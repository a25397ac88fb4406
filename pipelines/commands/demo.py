"""`tradewind demo`: the end-to-end run on the embedded real data (ingest → collect trades
→ train on development symbols → serve → trade the held-out symbols with retraining and
A/B → walk-forward evaluation → report)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""

    @app.command()
    def demo(
        symbols: list[str] | None = typer.Option(
            None, "--symbols", help="Stocks to trade (default: every held-out symbol)."),
        quick: bool = typer.Option(
            False, "--quick", help="A few symbols, one year, one retrain, one fold (tests)."),
        port: int = typer.Option(0, "--port", help="Model service port (0: a free one)."),
    ) -> None:
        """Run the whole platform offline on the embedded S&P 500 set: train on development
        symbols, trade the held-out ones through the model service, evaluate the policy
        walk-forward, and write reports/demo/."""
        from pipelines.demo.plan import DemoPlan
        from pipelines.demo.run import run_demo

        plan = DemoPlan.quick() if quick else DemoPlan.full()
        if symbols:
            plan = plan.model_copy(update={"trade_symbols": [s.upper() for s in symbols]})
        run_demo(plan, port=port or None)
