"""The `tradewind` command line. Each area registers its own commands from
`pipelines/commands/<area>.py`; this module only assembles them and turns Tradewind's
errors into one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from core.errors import TradewindError
from pipelines.commands import ctl, data, demo, features, flows, models, serving, trading

app = typer.Typer(
    name="tradewind",
    help="Tradewind: ML pipeline and model-serving platform for automated trading on Alpaca.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # docstrings wrap as paragraphs in --help
)


@app.callback()
def _root() -> None:
    """Tradewind: ML pipeline and model-serving platform for automated trading on Alpaca."""


for area in (data, features, trading, ctl, models, serving, flows, demo):
    area.register(app)

_err = Console(stderr=True)


@app.command()
def version() -> None:
    """Print Tradewind's version and the versions of the stack it runs on."""
    from importlib.metadata import version as installed

    console = Console()
    for name in ("tradewind", "mlflow", "bentoml", "feast", "prefect", "alpaca-py", "torch"):
        console.print(f"{name:<10} {installed(name)}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: typer reports usage errors itself; Tradewind's own errors become one
    clear line on stderr and exit code 2."""
    try:
        app(args=argv)
    except TradewindError as exc:
        # One line, never wrapped: a log or a pipe reads it whole.
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
