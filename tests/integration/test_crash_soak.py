"""The crash soak of `benchmarks/bench_crash_soak.py`, ten SIGKILLs with a fixed seed:
`tradewind trade` killed at armed points and at random moments while bars advance
against the paper exchange, restarted each time; no lost fill, no duplicate
client_order_id, positions equal to the exchange's, a consistent journal after every
restart. (`make bench` runs the hundred-kill version.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_crash_soak import soak

pytestmark = pytest.mark.integration


def test_ten_sigkills_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    result = soak(10, seed=7, workdir=tmp_path, say=lambda line: None)
    assert result.kills == 10
    assert result.restarts == 10
    assert result.counts.details == []
    assert result.counts.clean
    # The seeded rounds reach both kinds of death, and the run trades (fills to lose).
    assert any(way.startswith(("before_submit", "after_submit", "after_fill"))
               for way in result.by_way)
    assert result.by_way["in_flight"] > 0
    assert result.fills > 0
