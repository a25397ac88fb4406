"""The operations flows under one Prefect test harness, on real stores.

- evaluate_ab: a real MLflow registry (SQLite) with logged scikit-learn models, the trading
  journal and the serving decision log (SQLite). Closed-trade outcomes are constructed per
  arm so each branch of the rule is reached: keep collecting → promote → forced degradation
  → rollback, and a clearly worse challenger → retire.
- monitor: the four real models trained by the `train` flow on the embedded sample bars
  (2006 – March 2011), then drift, calibration and latency on the last 120 days of 2011.
- optimize: a short seeded Optuna search on the same bars; the proposal file.
- deploy: `tradewind deploy` in a subprocess registers every deployment with the harness's
  API, with exchange-time schedules that skip NYSE holidays.
- the market-day gate skips a scheduled run on a holiday with the reason recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

pytestmark = pytest.mark.integration

START = datetime(2012, 1, 3, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


class Stores:
    """One isolated set of stores and the overrides that point the flows at them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
        self.journal_url = f"sqlite:///{root / 'data' / 'journal.db'}"
        self.decision_log = root / "data" / "decisions.db"
        self.overrides: dict[str, Any] = {
            "paths": {
                "data_dir": str(root / "data"),
                "mlflow_tracking_uri": self.tracking_uri,
                "mlflow_artifact_root": str(root / "mlruns" / "artifacts"),
                "journal_url": self.journal_url,
                "reports_dir": str(root / "reports"),
            }
        }
        self._day = 0
        self.start = START

    def register_versions(self, name: str, count: int) -> list[str]:
        """`count` real logged models registered as versions of `name`."""
        from sklearn.linear_model import LogisticRegression

        from models.registry import ModelRegistry
        from models.tracker import MlflowTracker

        tracker = MlflowTracker(self.tracking_uri, self.root / "mlruns" / "artifacts")
        registry = ModelRegistry(self.tracking_uri)
        rng = np.random.default_rng(len(name))
        versions = []
        for number in range(count):
            features = rng.normal(size=(40, 3))
            labels = (features[:, 0] + rng.normal(scale=0.5, size=40) > 0).astype(int)
            model = LogisticRegression().fit(features, labels)
            with tracker.run(name, f"{name}-{number}", {"model": name}) as run:
                logged = run.log_model("sklearn", model, pip_requirements=["scikit-learn"])
            versions.append(
                registry.register(
                    name, logged.model_uri, run_id=logged.run_id, model_card=f"test model {number}"
                )
            )
        return versions

    def trades(self, rows: list[tuple[str, dict[str, str], float, float]]) -> None:
        """Closed trades (variant, versions, return, win probability at entry) in the journal
        and their decisions in the serving decision log, one day apart."""
        from core.types import Side, Trade
        from serving.decision_log import DecisionLog, DecisionRecord
        from trading.journal import Journal

        (self.root / "data").mkdir(parents=True, exist_ok=True)
        journal = Journal(self.journal_url, batch_size=1_000)
        log = DecisionLog(self.decision_log)
        try:
            for variant, versions, value, probability in rows:
                self._day += 1
                entry = self.start + timedelta(days=self._day)
                key = f"{variant}-{self._day}"
                log.record(
                    DecisionRecord(
                        decision_id=f"d-{key}",
                        decided_at=entry,
                        signal_id=f"s-{key}",
                        symbol="AAPL",
                        side="buy",
                        strategy="momentum",
                        signal_timestamp=entry,
                        price=100.0,
                        feature_hash="0" * 16,
                        variant=variant,
                        model_versions=versions,
                        outputs={"win_probability": probability},
                        out_of_distribution=False,
                        latency_ms=2.5,
                    )
                )
                journal.record_trade(
                    Trade(
                        trade_id=f"t-{key}",
                        symbol="AAPL",
                        side=Side.BUY,
                        qty=10.0,
                        entry_time=entry,
                        entry_price=100.0,
                        exit_time=entry + timedelta(days=2),
                        exit_price=100.0 * (1 + value),
                        strategy="momentum",
                        exit_reason="target" if value > 0 else "stop",
                        decision_id=f"d-{key}",
                    )
                )
        finally:
            log.close()
            journal.close()

    def copy_to(self, root: Path) -> Stores:
        """A new set of stores holding this one's files and a consistent copy of its MLflow
        database (logged artifacts are read in place), so a test never changes what
        another reads."""
        import shutil
        import sqlite3

        shutil.copytree(self.root, root, ignore=shutil.ignore_patterns("mlflow.db*"))
        database = self.root / "mlruns" / "mlflow.db"
        if database.exists():
            with sqlite3.connect(database) as source, sqlite3.connect(
                root / "mlruns" / "mlflow.db"
            ) as target:
                source.backup(target)
        return Stores(root)

    def aliases(self, name: str) -> dict[str, str]:
        from models.registry import ModelRegistry

        return ModelRegistry(self.tracking_uri).aliases(name)

    def evaluate(self, **parameters: Any) -> dict[str, Any]:
        from pipelines.flows.evaluate_ab import evaluate_ab_flow

        return evaluate_ab_flow(
            decision_log=str(self.decision_log),
            min_trades_per_arm=30,
            overrides=self.overrides,
            **parameters,
        )


def _returns(win_rate: float, count: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    wins = round(win_rate * count)
    values = [0.03] * wins + [-0.02] * (count - wins)
    return list(rng.permutation(np.array(values) * rng.uniform(0.8, 1.2, count)))


def _interleaved(
    stores: Stores, arms: list[tuple[str, dict[str, str], list[float], float]]
) -> None:
    """Write the arms' trades alternately so both arms trade over the same period."""
    longest = max(len(arm[2]) for arm in arms)
    stores.trades(
        [
            (variant, versions, returns[i], probability)
            for i in range(longest)
            for variant, versions, returns, probability in arms
            if i < len(returns)
        ]
    )


def test_keep_collecting_then_promote_then_rollback(prefect_harness: None, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from monitoring.store import ABOutcomeStore
    from pipelines.flows.evaluate_ab import AB_EXPERIMENT

    stores = Stores(tmp_path)
    for name in ("signal_quality", "exit_optimizer"):
        stores.register_versions(name, 2)
    from models.registry import ModelRegistry

    registry = ModelRegistry(stores.tracking_uri)
    for name in ("signal_quality", "exit_optimizer"):
        registry.set_challenger(name, "2", "better out of time")
    v1 = {"signal_quality": "1", "exit_optimizer": "1"}
    v2 = {"signal_quality": "2", "exit_optimizer": "2"}

    # 1. too few challenger trades: nothing moves
    _interleaved(
        stores,
        [
            ("champion", v1, _returns(0.40, 60, 1), 0.6),
            ("challenger", v2, _returns(0.80, 10, 2), 0.7),
        ],
    )
    first = stores.evaluate()
    assert first["action"] == "keep_collecting"
    assert not first["applied"]
    assert stores.aliases("signal_quality") == {"champion": "1", "challenger": "2"}

    # 2. the challenger is clearly better over enough trades: promote both models
    _interleaved(
        stores,
        [
            ("champion", v1, _returns(0.40, 20, 3), 0.6),
            ("challenger", v2, _returns(0.80, 50, 4), 0.7),
        ],
    )
    second = stores.evaluate()
    assert second["action"] == "promote", second["reason"]
    assert second["applied"]
    assert second["arms"]["challenger"]["trades"] == 60
    assert second["arms"]["challenger"]["win_rate"] == pytest.approx(0.8, abs=0.02)
    for name in ("signal_quality", "exit_optimizer"):
        assert stores.aliases(name) == {"champion": "2", "previous": "1"}
    assert {t["favours"] for t in second["tests"]} == {"challenger"}

    # 3. the new champion degrades in live trading: roll back to the previous version
    stores.trades([("champion", v2, value, 0.7) for value in _returns(0.15, 30, 5)])
    third = stores.evaluate()
    assert third["action"] == "rollback", third["reason"]
    assert "win rate 0.1" in third["reason"]
    for name in ("signal_quality", "exit_optimizer"):
        assert stores.aliases(name) == {"champion": "1"}
    tags = registry.versions("signal_quality")[0].tags  # newest = v2
    assert "rolled_back_reason" in tags

    # every outcome is in MLflow and in the journal
    client = MlflowClient(tracking_uri=stores.tracking_uri)
    experiment = client.get_experiment_by_name(AB_EXPERIMENT)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])
    assert [run.data.tags["verdict"] for run in runs] == ["keep_collecting", "promote", "rollback"]
    promote_run = runs[1]
    assert promote_run.data.metrics["challenger_win_rate"] == pytest.approx(0.8, abs=0.02)
    assert "mann_whitney_returns_pvalue" in promote_run.data.metrics
    with ABOutcomeStore(stores.journal_url) as store:
        outcomes = store.read()
    assert list(outcomes["verdict"]) == ["keep_collecting", "promote", "rollback"]
    assert list(outcomes["applied"]) == [0, 1, 1]
    assert outcomes["mlflow_run_id"].tolist() == [run.info.run_id for run in runs]

    def strict(constant: str) -> None:
        raise AssertionError(f"{constant} in stored JSON")

    details = [json.loads(text, parse_constant=strict) for text in outcomes["details"]]
    assert details[1]["arms"]["challenger"]["trades"] == 60
    alerts = [
        json.loads(line)
        for line in (tmp_path / "data" / "monitoring" / "alerts.jsonl").read_text().splitlines()
    ]
    assert [alert["priority"] for alert in alerts] == ["medium", "critical"]


def test_clearly_worse_challenger_is_retired_and_dry_run_moves_nothing(
    prefect_harness: None, tmp_path: Path
) -> None:
    stores = Stores(tmp_path)
    stores.register_versions("signal_quality", 2)
    from models.registry import ModelRegistry

    ModelRegistry(stores.tracking_uri).set_challenger("signal_quality", "2", "trial")
    _interleaved(
        stores,
        [
            ("champion", {"signal_quality": "1"}, _returns(0.65, 45, 6), 0.6),
            ("challenger", {"signal_quality": "2"}, _returns(0.20, 40, 7), 0.8),
        ],
    )
    dry = stores.evaluate(dry_run=True)
    assert dry["action"] == "retire"
    assert not dry["applied"]
    assert stores.aliases("signal_quality") == {"champion": "1", "challenger": "2"}

    # a move decided on a challenger that has since been replaced is not applied
    from pipelines.flows.evaluate_ab import apply_moves

    stale = {"challenger": {"signal_quality": "9"}}
    assert apply_moves.fn(stores.tracking_uri, "promote", "stale", stale) == {}
    assert stores.aliases("signal_quality") == {"champion": "1", "challenger": "2"}

    result = stores.evaluate()
    assert result["action"] == "retire", result["reason"]
    assert result["applied"]
    assert stores.aliases("signal_quality") == {"champion": "1"}
    # the challenger claimed 0.8 and won 20%: its log loss is far worse than the champion's
    assert result["arms"]["challenger"]["log_loss"] > result["arms"]["champion"]["log_loss"]


# -- monitor, optimize ------------------------------------------------------------------

SYMBOLS = ["AAPL", "MSFT"]


@pytest.fixture(scope="module")
def trained(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Stores:
    """Sample bars 2005–2011 in the bar store and the four models trained on 2006–2011Q1."""
    from features.bar_store import BarStore
    from pipelines.flows.train import train_flow
    from trading.adapters.sample.data import SampleMarketData

    stores = Stores(tmp_path_factory.mktemp("trained"))
    bars = SampleMarketData().history(None)
    keep = (
        bars["symbol"].isin([*SYMBOLS, "SPX", "COMP", "VIX"])
        & (bars["timestamp"] >= "2005-01-01")
        & (bars["timestamp"] < "2012-01-01")
    )
    BarStore(stores.root / "data" / "bars").write(bars[keep])
    train_flow(start="2006-01-01", end="2011-03-31", symbols=SYMBOLS, overrides=stores.overrides)
    return stores


def _artifact(key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return found


def test_monitor_reports_drift_calibration_latency_and_deduplicates_alerts(
    trained: Stores, tmp_path: Path
) -> None:
    from monitoring.calibration import expected_calibration_error
    from pipelines.flows.monitor import monitor_flow

    stores = trained.copy_to(tmp_path / "stores")
    # served decisions and closed trades inside the current window (the last 120 days)
    stores.start = datetime(2011, 9, 1, 20, 0, tzinfo=UTC)
    stores._day = 0
    rng = np.random.default_rng(11)
    probabilities = rng.uniform(0.55, 0.9, 40)
    returns = np.where(rng.uniform(size=40) < 0.5, 0.02, -0.015)
    stores.trades(
        [
            ("champion", {"signal_quality": "1"}, float(r), float(p))
            for r, p in zip(returns, probabilities, strict=True)
        ]
    )
    report = monitor_flow(
        symbols=SYMBOLS,
        window_days=120,
        latency_p99_limit_ms=1.0,
        calibration_days=365,
        overrides=stores.overrides,
        decision_log=str(stores.decision_log),
    )
    assert report["champion"]["version"] == "1"
    assert report["reference_window"][0].startswith("2006")
    assert report["current_window"][1].startswith("2011-12")
    drift = {row["feature"]: row for row in report["drift"]}
    assert report["features_monitored"] == len(drift) > 40
    measured = [row for row in drift.values() if row["status"] != "insufficient_data"]
    assert len(measured) > 40
    assert all(row["reference_n"] > 1000 for row in measured)
    # features without data in the sample (news, earnings) are reported, not silently stable
    assert all(
        row["feature"].startswith(("news_", "sent_", "earnings_"))
        for row in drift.values()
        if row["status"] == "insufficient_data"
    )
    assert {"stable", "moderate", "major"} & set(report["drift_counts"])
    assert "model_on_recent_bars" in report["prediction_drift"]
    assert report["prediction_drift"]["served"]["current_n"] == 40
    # calibration is the ECE of exactly those trades
    expected = expected_calibration_error(probabilities, returns > 0).ece
    assert report["calibration"]["trades"] == 40
    assert report["calibration"]["ece"] == pytest.approx(expected, abs=1e-4)
    assert report["latency"]["p99_ms"] == pytest.approx(2.5)
    assert "latency:decide" in report["alerts"]["keys"]
    assert Path(report["report_path"]).is_file()
    assert _artifact("feature-drift")
    # the same findings an hour later: every alert is a repeat and is suppressed
    again = monitor_flow(
        symbols=SYMBOLS,
        window_days=120,
        latency_p99_limit_ms=1.0,
        overrides=stores.overrides,
        decision_log=str(stores.decision_log),
    )
    assert again["alerts"]["sent"] == 0
    assert again["alerts"]["suppressed"] == report["alerts"]["sent"]


def test_optimize_writes_a_seeded_proposal_and_applies_nothing(
    trained: Stores, tmp_path: Path
) -> None:
    from core.settings import load_settings
    from pipelines.flows.optimize import optimize_flow
    from trading.optimization import EXIT_SEARCH_SPACE, objective_value
    from trading.proposal import read_proposal

    trained = trained.copy_to(tmp_path / "stores")

    parameters: dict[str, Any] = {
        "strategy": "momentum",
        "trials": 4,
        "seed": 7,
        "symbols": ["AAPL", "MSFT"],
        "overrides": trained.overrides,
    }
    first = optimize_flow(**parameters)
    second = optimize_flow(**parameters)
    assert first["params"] == second["params"]  # fixed sampler seed → same search
    proposal = read_proposal(first["path"])
    assert proposal["status"] == "proposed (not applied)"
    params = proposal["params"]
    assert 5 <= params["fast"] < params["slow"]
    for exit_parameter in EXIT_SEARCH_SPACE:
        assert exit_parameter.low <= params[exit_parameter.name] <= exit_parameter.high
    in_sample, out_of_time = proposal["windows"]["in_sample"], proposal["windows"]["out_of_time"]
    assert in_sample[1] == out_of_time[0]  # out of time starts where the search stopped
    # the search ran on the champion's training window (from its MLflow run tags)
    assert "champion signal_quality v1" in proposal["windows"]["source"]
    assert in_sample[0].startswith("2006")
    for block in (
        proposal["in_sample"],
        proposal["out_of_time"],
        proposal["baseline"]["in_sample"],
    ):
        assert {"trades", "win_rate", "sharpe", "max_drawdown", "total_return"} <= set(block)
    assert len(proposal["history"]) == 4
    # today's parameters are the first trial, so the proposal never loses in sample
    assert proposal["history"][0]["fast"] == 9
    assert objective_value(proposal["in_sample"], 20) >= objective_value(
        proposal["baseline"]["in_sample"], 20
    )
    assert proposal["recommendation"].startswith(("consider accepting", "keep the current"))
    assert load_settings(**trained.overrides).risk.stop_loss_atr == 2.0  # nothing applied


# -- market-day gate, deployments -------------------------------------------------------


def test_a_scheduled_run_on_a_market_holiday_is_skipped_with_the_reason(
    prefect_harness: None, tmp_path: Path
) -> None:
    from pipelines.flows.monitor import monitor_flow

    result = monitor_flow(
        as_of="2026-11-26T15:00:00", market_days_only=True, overrides=Stores(tmp_path).overrides
    )
    assert result["skipped"]
    assert "market holiday" in result["reason"]
    assert _artifact("monitor-skipped")


def test_deploy_registers_every_flow_with_exchange_time_schedules(
    prefect_harness: None, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    from core.calendar import MarketCalendar
    from pipelines.deployments import SCHEDULES

    project = Path(__file__).resolve().parents[2]
    api_url = str(get_current_settings().api.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEWIND_", "PREFECT_"))}
    env.update(
        {
            "PREFECT_API_URL": api_url,
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "PYTHONPATH": str(project),
            "TRADEWIND_PATHS__DATA_DIR": str(tmp_path / "data"),
            "TRADEWIND_PATHS__REPORTS_DIR": str(tmp_path / "reports"),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-c",
         "from pipelines.cli import main; main(['deploy', '--symbols', 'AAPL,MSFT'])"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    expected = {spec.flow for spec in SCHEDULES}
    try:
        deadline = time.monotonic() + 120
        deployments: dict[str, Any] = {}
        while time.monotonic() < deadline and set(deployments) != expected:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            with get_client(sync_client=True) as client:
                flows = {flow.id: flow.name for flow in client.read_flows()}
                deployments = {
                    flows[d.flow_id]: d for d in client.read_deployments() if d.flow_id in flows
                }
            time.sleep(0.5)  # polling the API with a deadline
        assert set(deployments) == expected
        # runnable: a run of the monitor deployment (as the UI's "Run" button makes it) is
        # picked up by the serving process; on a holiday it skips cleanly
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(
                deployments["monitor"].id,
                parameters={"as_of": "2026-11-26T15:00:00", "market_days_only": True},
            )
            final = None
            while time.monotonic() < deadline + 60:
                state = client.read_flow_run(run.id).state
                if state is not None and state.is_final():
                    final = state
                    break
                time.sleep(0.5)  # polling the run's state with a deadline
        assert final is not None
        assert final.is_completed(), final
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    today = datetime.now(UTC).date()
    holidays = MarketCalendar().holidays(today, today + timedelta(days=370))
    for spec in SCHEDULES:
        deployment = deployments[spec.flow]
        assert deployment.name == spec.deployment
        if not spec.scheduled:
            assert deployment.schedules == []
            continue
        (schedule,) = deployment.schedules
        assert schedule.schedule.timezone == "America/New_York"
        rrule = schedule.schedule.rrule
        assert f"BYHOUR={','.join(map(str, spec.hours))};BYMINUTE={spec.minute}" in rrule
        for holiday in holidays:
            for moment in spec.run_times(holiday):
                assert f"{moment:%Y%m%dT%H%M%S}" in rrule
        assert spec.cron is not None
        assert spec.cron in deployment.description
        # every flow runs on the user's data (here: --symbols), not on empty parameters
        data = {"symbols": ["AAPL", "MSFT"], "timeframe": "1Day"}
        if spec.flow in {"monitor", "optimize"}:
            assert deployment.parameters == {**data, "market_days_only": True}
        if spec.flow == "evaluate_ab":
            assert deployment.parameters == {"market_days_only": True}
        if spec.flow == "ingest":
            assert deployment.parameters == {**data, "source": "sample"}
        if spec.flow in {"train", "retrain"}:
            assert deployment.parameters == {"symbols": ["AAPL", "MSFT"], "source": "sample"}
    # ingest runs hourly in the session, and not on the next holiday
    from prefect.server.schemas.schedules import RRuleSchedule

    ingest = deployments["ingest"].schedules[0].schedule
    server_schedule = RRuleSchedule(rrule=ingest.rrule, timezone=ingest.timezone)
    dates = asyncio.run(
        server_schedule.get_dates(
            n=400,
            start=datetime.combine(holidays[0] - timedelta(days=3), datetime.min.time(), UTC),
        )
    )
    local = [moment.astimezone(ZoneInfo("America/New_York")) for moment in dates]
    assert all(moment.date() != holidays[0] for moment in local)
    assert {moment.hour for moment in local} == set(range(10, 17))
    assert {moment.minute for moment in local} == {5}


def test_ui_serves_prefect_and_mlflow_on_the_project_stores_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """SIGTERM (a service manager's stop) takes the same path as Ctrl-C
    (`pipelines.runtime.sigterm_as_ctrl_c`): both servers and every process they started
    are gone afterwards, and the server record is removed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx
    import psutil

    from pipelines.runtime import free_port

    project = Path(__file__).resolve().parents[2]
    prefect_port, mlflow_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEWIND_", "PREFECT_"))}
    env["PYTHONPATH"] = str(project)
    output = (tmp_path / "ui.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pipelines.cli import main; main(['ui', "
            f"'--prefect-port', '{prefect_port}', '--mlflow-port', '{mlflow_port}'])",
        ],
        cwd=tmp_path,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    urls = {
        "prefect": f"http://127.0.0.1:{prefect_port}/api/health",
        "mlflow": f"http://127.0.0.1:{mlflow_port}/health",
    }

    def answering() -> set[str]:
        up = set()
        for name, url in urls.items():
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    up.add(name)
            except httpx.HTTPError:
                pass
        return up

    try:
        deadline = time.monotonic() + 150
        while answering() != set(urls) and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "ui.log").read_text()
            time.sleep(0.5)  # polling the two servers with a deadline
        assert answering() == set(urls)
        record = json.loads((tmp_path / "data" / "prefect" / "server.json").read_text())
        assert record["api_url"] == f"http://127.0.0.1:{prefect_port}/api"
        assert (tmp_path / "data" / "prefect" / "prefect.db").is_file()
        assert (tmp_path / "mlruns" / "mlflow.db").is_file()
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2  # Prefect's server and MLflow's
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise
        finally:
            output.close()
    assert code == 0, (tmp_path / "ui.log").read_text()[-3000:]
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], [p.cmdline()[:4] for p in alive]
    deadline = time.monotonic() + 30
    while answering() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert answering() == set()
    assert not (tmp_path / "data" / "prefect" / "server.json").exists()
    assert "stopping the UIs" in (tmp_path / "ui.log").read_text()
