"""Run the `tradewind` entry point in-process (typer's CliRunner isolation: captured
stdout and stderr, no terminal) and return what a user would see."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from typer.testing import CliRunner

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def run_cli(*args: str, env: dict[str, str] | None = None) -> Outcome:
    """`tradewind ARGS...` through `pipelines.cli.main`, as the console script runs it."""
    from pipelines.cli import main

    runner = CliRunner()
    with runner.isolation(env=env) as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()  # print() writes through a buffered wrapper
        sys.stderr.flush()
        stdout = out.getvalue().decode(errors="replace")
        stderr = err.getvalue().decode(errors="replace") if err is not None else ""
    return Outcome(code, ANSI.sub("", stdout), ANSI.sub("", stderr))
