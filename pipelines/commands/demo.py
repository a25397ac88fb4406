"""`tradewind demo`: the end-to-end run on the embedded real data."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `tradewind` app."""
