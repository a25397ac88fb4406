"""`tradewind demo`: the end-to-end run on the embedded real data (ingest → collect trades
→ train → serve → trade with retraining and A/B → report)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""

    @app.command()
    def demo(
        symbols: list[str] | None = typer.Option(
            None, "--symbols", help="Stocks to trade (default: AAPL MSFT IBM GOOG)."
        ),
        quick: bool = typer.Option(
            False, "--quick", help="Fewer years and a single retrain (the test suite runs this)."
        ),
        port: int = typer.Option(0, "--port", help="Model service port (0: a free one)."),
    ) -> None:
        """Run the whole platform offline on the sample data and write reports/demo/."""
        from pipelines.demo.plan import DemoPlan
        from pipelines.demo.run import run_demo
        from pipelines.runtime import sigterm_as_ctrl_c

        plan = DemoPlan.quick() if quick else DemoPlan.full()
        if symbols:
            plan = plan.model_copy(update={"symbols": [s.upper() for s in symbols]})
        with sigterm_as_ctrl_c():  # its model service stops on SIGTERM as on Ctrl-C
            run_demo(plan, port=port or None)
