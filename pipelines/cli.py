"""The `tradewind` command line. Each area registers its own commands from
`pipelines/commands/<area>.py`; this module only assembles them and turns every mistake
(a usage error, or one of Tradewind's own errors) into one `error:` line on stderr and
exit code 2, never a traceback."""

from __future__ import annotations

import itertools
import sys

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

# typer 0.29 vendors click: its usage errors are these classes, not the `click` package's.
from typer._click import exceptions as click_errors

from core.errors import TradewindError
from pipelines.commands import ctl, data, demo, doctor, features, flows, models, serving, trading
from pipelines.commands.options import WrappedHelpGroup

app = typer.Typer(
    name="tradewind",
    cls=WrappedHelpGroup,
    help="Tradewind: ML pipeline and model-serving platform for automated trading on Alpaca.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: it wraps at any width, where rich's panels cut option names at 80 columns.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

STACK = ("tradewind", "mlflow", "bentoml", "feast", "prefect", "alpaca-py", "torch")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version as installed

        print(f"tradewind {installed('tradewind')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True,
        help="Print Tradewind's version and exit.",
    ),
) -> None:
    """Tradewind: ML pipeline and model-serving platform for automated trading on Alpaca."""


for area in (data, features, trading, ctl, models, serving, flows, demo, doctor):
    area.register(app)

_err = Console(stderr=True)


@app.command()
def version() -> None:
    """Print Tradewind's version and the versions of the stack it runs on."""
    from importlib.metadata import version as installed

    console = Console()
    for name in STACK:
        console.print(f"{name:<10} {installed(name)}")


def _usage_line(exc: click_errors.UsageError, argv: list[str]) -> str:
    """A usage error as one line: what is wrong, in which command, where help is."""
    message = exc.format_message()
    if exc.ctx is not None:
        command = exc.ctx.command_path
    else:  # the option parser's errors carry no context: the words before the options
        words = list(itertools.takewhile(lambda word: not word.startswith("-"), argv))
        command = " ".join(["tradewind", *words])
    if "unexpected extra argument" in message and any(
        word in message.lower() for word in ("(true)", "(false)", "(yes)", "(no)")
    ):
        message += "; yes/no options are flags: --name to turn on, --no-name to turn off"
    return f"{command}: {message} (see '{command} -h')"


def main(argv: list[str] | None = None) -> None:
    """Entry point: a usage error or a Tradewind error is one `error:` line on stderr and
    exit code 2."""
    try:
        code = app(args=argv, prog_name="tradewind", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        print(exc.format_message())
        sys.exit(0)
    except click_errors.UsageError as exc:
        line = _usage_line(exc, sys.argv[1:] if argv is None else argv)
        _err.print(f"[bold red]error:[/] {escape(line)}", highlight=False,
                   soft_wrap=True)
        sys.exit(2)
    except click_errors.ClickException as exc:
        _err.print(f"[bold red]error:[/] {escape(exc.format_message())}", highlight=False,
                   soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        _err.print("aborted")
        sys.exit(130)
    except TradewindError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ValidationError as exc:  # a value a command passed on to a typed config
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        _err.print(f"[bold red]error:[/] {escape(f'{exc.title}: {problems}')}",
                   highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
