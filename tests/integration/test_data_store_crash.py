"""An ingest killed with SIGKILL half-way leaves every partition readable, and the next
run completes it without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.bars import validate_bars
from features.bar_store import BarStore
from tests.conftest import PROJECT_ROOT

SYMBOLS = 120
DAYS = 500

# The child writes the whole frame; after `pause_after` partitions are on disk it
# announces it and blocks, so the parent kills it at a known point (no timing guess).
CHILD = """
import sys
from pathlib import Path
from features.bar_store import BarStore
from tests.integration.test_data_store_crash import frame

root, pause_after = Path(sys.argv[1]), int(sys.argv[2])
done = 0

def on_partition(symbol: str, rows_new: int) -> None:
    global done
    done += 1
    if done == pause_after:
        print("paused", flush=True)
        sys.stdin.read()  # blocks until killed

BarStore(root).write(frame(), on_partition=on_partition)
print("finished", flush=True)
"""


def frame() -> pd.DataFrame:
    """Deterministic synthetic daily bars (labelled synthetic: only the store's mechanics
    are under test here)."""
    rng = np.random.default_rng(7)
    stamps = pd.bdate_range("2016-01-04", periods=DAYS).tz_localize("America/New_York")
    parts = []
    for index in range(SYMBOLS):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, DAYS)))
        parts.append(
            pd.DataFrame(
                {
                    "symbol": f"SYN{index:03d}",
                    "timestamp": stamps.tz_convert("UTC"),
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "close": close,
                    "volume": 1e5,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def wait_for_line(process: subprocess.Popen[str], expected: str, deadline: float) -> None:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.strip() == expected:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"child never printed {expected!r} (exit code {process.poll()})")


@pytest.mark.integration
def test_killed_ingest_leaves_a_readable_store_and_the_rerun_completes(tmp_path: Path) -> None:
    root = tmp_path / "bars"
    # Start from a store that already holds an older, overlapping slice of two symbols.
    source = frame()
    store = BarStore(root)
    store.write(source[source["symbol"].isin(["SYN000", "SYN100"])].iloc[::2])

    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), "30"],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_line(child, "paused", time.monotonic() + 120)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    # Half-way: 30 partitions complete, the rest old or absent, and everything readable.
    expected = validate_bars(source, where="source", timeframe="1Day").bars
    half = store.read()
    assert half["symbol"].nunique() == 31  # 30 written + SYN100's older slice
    assert not half.duplicated(["symbol", "timestamp"]).any()
    complete = sorted(half["symbol"].unique())[:30]
    assert complete[-1] == "SYN029"
    pd.testing.assert_frame_equal(
        half[half["symbol"].isin(complete)].reset_index(drop=True),
        expected[expected["symbol"].isin(complete)].reset_index(drop=True),
    )
    assert len(half[half["symbol"] == "SYN100"]) == DAYS // 2  # untouched older slice

    # A writer killed inside a partition leaves a torn temp file: simulate one.
    torn = root / "timeframe=1Day" / "symbol=SYN100" / ".all.parquet.12345.tmp"
    torn.write_bytes(b"PAR1" + b"\0" * 100)
    assert len(store.read(["SYN100"])) == DAYS // 2

    # The next run completes the ingest: nothing lost, nothing duplicated.
    report = store.write(source)
    assert report.rows_new == len(expected) - len(half)
    pd.testing.assert_frame_equal(store.read(), expected)
    assert not torn.exists()
