"""Tokens and keys never reach a log: a real run of `tradewind paper-exchange` (with
keys required) and `tradewind trade` (with an API token) that trades, is refused with a
wrong token and wrong keys, and stops; then every line both wrote, and every file they
left in the working folder, is searched for each secret."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.engine_support import TOKEN, Engine
from tests.integration.exchange_support import KEY, SECRET, Exchange, sample_bars, write_store

pytestmark = pytest.mark.integration

WRONG_TOKEN = "wrong-token-8c1f"
WRONG_SECRET = "wrong-secret-93ab"


def test_tokens_and_keys_never_reach_the_logs(tmp_path: Path) -> None:
    write_store(tmp_path / "data", sample_bars(("AAPL", "MSFT"), start="2008-09-01",
                                                end="2010-04-30"))
    exchange = Exchange(tmp_path, symbols="AAPL,MSFT", start="2010-02-22", keys=True).start()
    engine = Engine(exchange)
    try:
        engine.start()
        engine.advance(8)  # AAPL's momentum entry (02-26) is submitted and filled
        assert engine.post("/api/pause", token=WRONG_TOKEN).status_code == 401
        refused = httpx.get(exchange.url + "/v2/account", timeout=10,
                            headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": WRONG_SECRET})
        assert refused.status_code == 401
        assert engine.stop() == 0
        assert exchange.process is not None
        exchange.process.terminate()
        logs = engine.logs() + "".join(exchange.process.output) + exchange.process.stderr()
    finally:
        engine.close()
        exchange.close()
    assert "AAPL" in logs  # the run did log what it did
    files = "".join(
        path.read_text(errors="replace") for path in tmp_path.rglob("*")
        if path.is_file() and path.suffix in (".log", ".json", ".jsonl", ".txt")
    )
    for secret in (TOKEN, KEY, SECRET, WRONG_TOKEN, WRONG_SECRET):
        assert secret not in logs, secret
        assert secret not in files, secret
