"""Which code trained a model: `code_version()` is the one value every training run tags
(`code_version`) and writes into its model card."""

from __future__ import annotations

import subprocess
from pathlib import Path

_CODE_DIR = Path(__file__).resolve().parent


def code_version() -> str:
    """The git commit of the checkout the code runs from, with `-dirty` when tracked files
    have changes; `unknown` outside a checkout. Asked in the code's own folder, so the
    caller's working directory does not matter."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True, cwd=_CODE_DIR,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=False, cwd=_CODE_DIR,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not sha:
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
