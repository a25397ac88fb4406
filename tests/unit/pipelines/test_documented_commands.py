"""Every `tradewind` command written in README.md and docs/ parses as written: the command
exists, every option exists and every value has the right type (issue 16: docs that had
drifted from the commands). Nothing runs; `tests/integration/test_docs.py` runs the blocks
marked runnable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click.exceptions import NoArgsIsHelpError  # typer 0.29 vendors click

from core.settings import load_settings
from pipelines.cli import app
from tests.docs_blocks import DOCUMENTS, runnable, shell_blocks, tradewind_commands

COMMANDS = tradewind_commands()


def parse(argv: list[str]) -> list[str]:
    """Parse `tradewind ARGV` down to its leaf command without invoking anything; the
    names of the commands it resolved."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("tradewind", list(argv))
    path = []
    while hasattr(command, "resolve_command") and ctx._protected_args:
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        path.append(name)
        ctx = command.make_context(name, rest, parent=ctx)
    return path


def test_the_docs_name_many_commands() -> None:
    assert len(COMMANDS) > 30
    assert {"ingest", "train", "serve", "paper-exchange", "trade"} <= {
        argv[0] for _, argv in COMMANDS if argv
    }


@pytest.mark.parametrize(("argv"), [argv for _, argv in COMMANDS],
                         ids=[f"{where} {' '.join(argv)}" for where, argv in COMMANDS])
def test_a_documented_command_parses_as_written(argv: list[str]) -> None:
    try:
        path = parse(argv)
    except typer.Exit:  # --help / --version print and stop: they parsed
        return
    except NoArgsIsHelpError:  # a group named in prose (`tradewind ctl`)
        assert len(argv) == 1, argv
        return
    assert path, argv


def test_a_drifted_command_is_caught() -> None:
    """The checker itself: an option the command does not have fails to parse."""
    with pytest.raises(Exception, match="No such option"):
        parse(["train", "--sybmols", "AAPL"])


def test_runnable_blocks_are_found() -> None:
    names = {block.name for block in shell_blocks() if block.name}
    assert {"offline-quickstart", "decide", "paper-exchange-admin"} <= names
    assert runnable("offline-quickstart").commands()[0].startswith("tradewind ingest")


def test_the_documented_settings_file_loads(workdir: Path) -> None:
    """Every `# tradewind.yaml` example in the docs is a settings file that loads."""
    examples = [
        match.group(1)
        for path in DOCUMENTS
        for match in re.finditer(r"```yaml\n(# tradewind\.yaml\n.*?)```",
                                 path.read_text(encoding="utf-8"), re.DOTALL)
    ]
    assert examples
    for text in examples:
        (workdir / "tradewind.yaml").write_text(text, encoding="utf-8")
        settings = load_settings()
        assert settings.data.source == "alpaca" or "data:" not in text
