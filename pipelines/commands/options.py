"""The option vocabulary every `tradewind` command shares: one way to give symbols (a comma
list, a repeated flag, or both), dates, a timeframe and a data source, each parsed and
checked here before a command reads or writes anything, so a mistake ends in one line."""

from __future__ import annotations

from datetime import date, datetime

import typer
from typer._click.core import Context  # typer 0.29 vendors click
from typer._click.formatting import HelpFormatter
from typer.core import TyperGroup

from core.errors import ConfigError

SYMBOLS_METAVAR = "A,B"
SYMBOLS_HELP = "comma-separated and/or repeated: --symbols AAPL,MSFT --symbols IBM"
SOURCES_HELP = "sample | sp500 | parquet | csv (with --path) | alpaca"  # what ingests from


class WrappedHelpGroup(TyperGroup):
    """A command group whose command list gives each command's whole first sentence,
    wrapped to the terminal, where click would cut it with `...` at 80 columns."""

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def command_group(help_text: str) -> typer.Typer:
    """A sub-command group with the shared conventions: plain help that wraps at any
    terminal width (rich's panels cut option names at 80 columns), `-h`, help on no
    arguments."""
    return typer.Typer(
        help=help_text,
        cls=WrappedHelpGroup,
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def parse_symbols(values: list[str] | None) -> list[str]:
    """Upper-cased, de-duplicated symbols from repeated and comma-separated values, in the
    order given; a name that cannot be a ticker is refused."""
    names = [part.strip().upper() for value in values or [] for part in value.split(",")]
    chosen = list(dict.fromkeys(name for name in names if name))
    for name in chosen:
        if not all(ch.isalnum() or ch in ".-/" for ch in name):
            raise ConfigError(
                f"--symbols: {name!r} is not a ticker; give e.g. --symbols AAPL,MSFT"
            )
    return chosen


def parse_day(value: str | None, option: str) -> str | None:
    """`value` unchanged when it is an ISO date or time, else a ConfigError naming the
    option and the expected form."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {value!r} is not a date; give YYYY-MM-DD (or an ISO time such as "
            "2013-05-02T20:00:00Z)"
        ) from None
    return value


def check_choice(value: str, choices: tuple[str, ...] | list[str], option: str) -> str:
    """`value` when it is one of `choices`, else a ConfigError listing them."""
    if value not in choices:
        raise ConfigError(
            f"{option} {value!r} is not one of {', '.join(choices)}"
        )
    return value
