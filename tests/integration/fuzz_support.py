"""Fuzzing a running HTTP API from its own OpenAPI document with schemathesis (every
check, a bounded number of examples, deterministic generation): zero 5xx, zero answers
outside the schema, zero accepted malformed requests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("schemathesis.toml")


def fuzz(
    schema_url: str, token: str, workdir: Path, *, max_examples: int = 25, workers: int = 1
) -> str:
    """Run schemathesis against `schema_url` with the bearer token; returns its report,
    or fails the test with it. `workers` > 1 tests operations concurrently (the generated
    cases stay the same: each operation's are deterministic)."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        schema_url, "--checks", "all", "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(max_examples), "--generation-deterministic", "--no-color",
        "--request-timeout", "30", "--workers", str(workers),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-12000:]
    # Every generated case passed (a warning such as "missing test data" for a path
    # parameter naming nothing that exists replaces the "No issues found" line).
    assert re.search(r"(\d+) generated, \1 passed", report) or "No issues found" in report, (
        report[-12000:]
    )
    return report
