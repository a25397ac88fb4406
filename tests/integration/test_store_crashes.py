"""SIGKILL in the middle of a write leaves every store readable, and the re-run completes
with nothing duplicated: offline features, trade collection, Feast materialization, model
registration and the serving decision log (the bar store: `test_data_store_crash.py`).

Each writer runs in a real child process. A hook in the child (timing only; the store
code is the real one) announces the chosen moment and blocks there, so the parent kills
it at a known point rather than on a timing guess."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from core.settings import PathSettings
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT"]


def kill_at_pause(script: str, *args: str) -> None:
    """Run `script` in a child, wait for its `paused` line, SIGKILL it."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("TRADEWIND_", "ALPACA_"))
    }
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=PROJECT_ROOT, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert child.stdout is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            seen.append(line)
            if line.strip() == "paused":
                break
            if not line and child.poll() is not None:
                raise AssertionError(f"the child exited {child.returncode}:\n{''.join(seen)}")
        else:
            raise AssertionError("the child never paused")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    """Features of real daily bars (the embedded sample: AAPL, MSFT and the S&P 500)."""
    from features.compute import compute_feature_set
    from trading.adapters.sample.data import SampleMarketData

    bars = SampleMarketData().history(None)
    bars = bars[bars["timestamp"].between("2011-01-01", "2012-12-31")]
    stocks = bars[bars["symbol"].isin(SYMBOLS)].reset_index(drop=True)
    index = bars[bars["symbol"] == "SPX"].reset_index(drop=True)
    return compute_feature_set(stocks, index).frame


def _store(root: Path):  # type: ignore[no-untyped-def]
    from features.store import FeatureStore

    return FeatureStore(PathSettings(data_dir=root))


BLOCK_RENAME = """
import os, sys
def blocked(src, dst):
    print("paused", flush=True)
    sys.stdin.read()
os.replace = blocked
"""

# argv: data dir, parquet file of rows, FeatureStore method (write_features, write_trades)
WRITE = BLOCK_RENAME + """
import pandas as pd
from pathlib import Path
from core.settings import PathSettings
from features.store import FeatureStore
store = FeatureStore(PathSettings(data_dir=Path(sys.argv[1])))
getattr(store, sys.argv[3])(pd.read_parquet(sys.argv[2]))
"""


def test_a_killed_feature_write_leaves_the_old_rows_and_the_rerun_completes(
    tmp_path: Path, features: pd.DataFrame
) -> None:
    root = tmp_path / "data"
    first = features[features["timestamp"] < "2012-01-01"]
    _store(root).write_features(first)
    features.to_parquet(tmp_path / "all.parquet")
    kill_at_pause(WRITE, str(root), str(tmp_path / "all.parquet"), "write_features")

    store = _store(root)
    stored = store.read_features()  # every *.parquet of the folder, as the joins read it
    assert len(stored) == len(first)
    assert not stored.duplicated(["symbol", "timestamp"]).any()
    assert any(store.files.bar_dir.glob(".tmp-*"))  # the killed writer's complete temp file

    assert store.write_features(features) == len(features)
    stored = store.read_features()
    assert len(stored) == len(features)
    assert not stored.duplicated(["symbol", "timestamp"]).any()


def _trades(features: pd.DataFrame, count: int) -> pd.DataFrame:
    rows = features[features["symbol"] == "AAPL"].iloc[30 : 30 + count * 5 : 5]
    entry = pd.to_datetime(rows["timestamp"].to_numpy(), utc=True)
    return pd.DataFrame({
        "trade_id": [f"t-{n}" for n in range(count)],
        "symbol": "AAPL",
        "side": "buy",
        "qty": 10.0,
        "entry_time": entry,
        "entry_price": 100.0,
        "exit_time": entry + pd.Timedelta(days=3),
        "exit_price": [101.0 if n % 2 else 99.0 for n in range(count)],
        "strategy": "momentum",
        "exit_reason": "take_profit",
    })


def test_a_killed_trade_collection_keeps_the_stored_trades_and_the_rerun_completes(
    tmp_path: Path, features: pd.DataFrame
) -> None:
    from features.offline_store import duckdb_connection

    root = tmp_path / "data"
    store = _store(root)
    store.write_features(features)
    trades = _trades(features, 20)
    assert store.write_trades(trades.head(8)) == 8
    trades.to_parquet(tmp_path / "trades.parquet")
    kill_at_pause(WRITE, str(root), str(tmp_path / "trades.parquet"), "write_trades")

    def stored_ids() -> list[str]:
        with duckdb_connection() as con:  # the folder as the offline joins read it
            rows = con.execute(f"SELECT trade_id FROM {store.files.trade_glob()}").fetchall()
        return sorted(str(row[0]) for row in rows)

    assert stored_ids() == sorted(trades["trade_id"].head(8))
    assert sorted(store.read_trades()["trade_id"]) == sorted(trades["trade_id"].head(8))
    assert store.write_trades(trades) == 12
    assert stored_ids() == sorted(trades["trade_id"])
    assert store.write_trades(trades) == 0  # once more: nothing new, nothing doubled
    assert stored_ids() == sorted(trades["trade_id"])


MATERIALIZE = """
import sys
from pathlib import Path
from core.settings import PathSettings
from features.online_store import FeastOnlineStore
from features.store import FeatureStore
real_write = FeastOnlineStore.write
def write_then_pause(self, view, rows):
    written = real_write(self, view, rows)
    print("paused", flush=True)  # one view written, the others not yet
    sys.stdin.read()
    return written
FeastOnlineStore.write = write_then_pause
store = FeatureStore(PathSettings(data_dir=Path(sys.argv[1])))
store.materialize()
"""


def test_a_killed_materialize_leaves_the_online_store_readable_and_the_rerun_completes(
    tmp_path: Path, features: pd.DataFrame
) -> None:
    root = tmp_path / "data"
    store = _store(root)
    store.apply()
    store.write_features(features[features["timestamp"] < "2012-01-01"])
    store.materialize()
    before = store.online_features("AAPL")
    store.write_features(features)
    kill_at_pause(MATERIALIZE, str(root))

    with sqlite3.connect(store.root / "online.db") as online:
        assert online.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    after_kill = _store(root).online_features("AAPL")  # readable: old or new per view
    assert set(after_kill) == set(before)

    _store(root).materialize()
    latest = features[features["symbol"] == "AAPL"].iloc[-1]
    online = _store(root).online_features("AAPL")
    for name in ("rsi_14", "atr_14", "mkt_trend"):
        assert online[name] == pytest.approx(float(latest[name]), rel=1e-6), name


REGISTER = """
import sys
from pathlib import Path
import numpy as np
from sklearn.linear_model import LogisticRegression
from models.registry import ModelRegistry
from models.tracker import MlflowTracker
uri, artifacts = sys.argv[1], Path(sys.argv[2])
rng = np.random.default_rng(3)
X = rng.normal(size=(40, 3))
model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
with MlflowTracker(uri, artifacts).run("signal_quality", "crash", {"model": "x"}) as run:
    logged = run.log_model("sklearn", model, pip_requirements=["scikit-learn"])
print("logged", logged.model_uri, logged.run_id, flush=True)
def paused(*args, **kwargs):
    print("paused", flush=True)  # the version exists, its champion alias not yet
    sys.stdin.read()
ModelRegistry._move = paused
ModelRegistry(uri).register("signal_quality", logged.model_uri, run_id=logged.run_id,
                            model_card="crash test")
"""


def test_a_killed_registration_is_completed_by_the_rerun_without_a_second_version(
    tmp_path: Path,
) -> None:
    from models.registry import ModelRegistry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log = tmp_path / "child.log"
    script = REGISTER.replace(
        'print("logged", logged.model_uri, logged.run_id, flush=True)',
        f'open({str(log)!r}, "w").write(logged.model_uri + " " + logged.run_id)',
    )
    kill_at_pause(script, uri, str(tmp_path / "artifacts"))
    model_uri, run_id = log.read_text().split()

    registry = ModelRegistry(uri)
    versions = registry.versions("signal_quality")  # readable after the kill
    assert [v.version for v in versions] == ["1"]
    assert "champion" not in registry.aliases("signal_quality")

    assert registry.register("signal_quality", model_uri, run_id=run_id,
                             model_card="crash test") == "1"
    assert [v.version for v in registry.versions("signal_quality")] == ["1"]
    assert registry.aliases("signal_quality") == {"champion": "1"}


DECISIONS = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from serving.decision_log import DecisionLog, DecisionRecord
path, pause_after = Path(sys.argv[1]), int(sys.argv[2])
log = DecisionLog(path)
start = datetime(2024, 1, 2, 15, tzinfo=UTC)
for n in range(4000):
    at = start + timedelta(minutes=n)
    log.record(DecisionRecord(
        decision_id=f"d-{n}", decided_at=at, signal_id=f"s-{n}", symbol="AAPL", side="buy",
        strategy="momentum", signal_timestamp=at, price=100.0, feature_hash="0" * 16,
        variant="champion", model_versions={"signal_quality": "1"},
        outputs={"win_probability": 0.6}, out_of_distribution=False, latency_ms=1.0))
    if n + 1 == pause_after:
        log.flush()  # the first part is on disk
if pause_after:
    print("paused", flush=True)  # the writer thread is still writing the rest
    sys.stdin.read()
log.close()
print("finished", flush=True)
"""


def test_a_killed_decision_log_is_readable_and_the_rerun_logs_each_decision_once(
    tmp_path: Path,
) -> None:
    from serving.decision_log import read_decisions

    path = tmp_path / "decisions.db"
    kill_at_pause(DECISIONS, str(path), "2000")
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    half = read_decisions(path)
    assert 2000 <= len(half) <= 4000
    assert not half["decision_id"].duplicated().any()

    rerun = subprocess.run(
        [sys.executable, "-c", DECISIONS, str(path), "0"], cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    full = read_decisions(path)
    assert len(full) == 4000
    assert sorted(full["decision_id"]) == sorted(f"d-{n}" for n in range(4000))
