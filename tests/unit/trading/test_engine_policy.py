"""The engine with the service's decision logic in process: what the policy decided, the
decision log and the journal agree on every signal (action, reason category, the
detector's own OOD flag), and the engine sizes from the policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.types import Side
from models.policy import PolicyConfig
from serving.decision_log import read_decisions
from serving.inprocess import InProcessModelClient
from tests.unit.serving.fakes import FormulaModelSet, hand_policy

from .helpers import Harness

EXTRA = {"return_5": 0.01, "sent_mean_1d": float("nan")}


@pytest.mark.parametrize("ood_action", ["skip", "half_size"])
def test_log_and_journal_record_what_happened(tmp_path: Path, ood_action: str) -> None:
    config = PolicyConfig(ood_action=ood_action)  # type: ignore[arg-type]
    client = InProcessModelClient(FormulaModelSet(policy=hand_policy(config)),
                                  decision_log=tmp_path / "decisions.db")
    h = Harness(model=client, strategy=None)
    # p = rsi / 100: 0.40 below the 0.55 threshold; 0.995 is out of distribution (fake)
    h.bar(0, 100, 101, 99, 100, symbol="LOW", signal=Side.BUY, features={**EXTRA, "rsi_14": 40})
    h.bar(0, 50, 51, 49, 50, symbol="ODD", signal=Side.BUY, features={**EXTRA, "rsi_14": 99.5})
    h.bar(0, 70, 71, 69, 70, symbol="HIGH", signal=Side.BUY, features={**EXTRA, "rsi_14": 70})
    client.close()
    journal = h.journal.decisions().set_index("symbol")
    log = read_decisions(tmp_path / "decisions.db").set_index("symbol")
    ood_skipped = ood_action == "skip"
    expected = {
        "LOW": ("skipped", "ev", False),
        "ODD": ("skipped", "ood", True) if ood_skipped else ("entered", "", True),
        "HIGH": ("entered", "", False),
    }
    for symbol, (action, category, ood) in expected.items():
        row = journal.loc[symbol]
        assert (row["action"], row["category"], bool(row["out_of_distribution"])) == (
            action, category, ood), symbol
        logged = log.loc[symbol]
        assert logged["decision_id"] == row["decision_id"]
        assert logged["action"] == ("skip" if action == "skipped" else "enter")
        assert logged["reason"] == category
        assert bool(logged["out_of_distribution"]) is ood
    assert h.engine.stats.refusals == ({"ev": 1, "ood": 1} if ood_skipped else {"ev": 1})
    entered = [o for o in h.broker.open_orders() if not o.client_order_id.endswith(("-sl", "-tp"))]
    sizes = {o.symbol: o.qty * {"ODD": 50, "HIGH": 70}[o.symbol] / 100_000 for o in entered}
    assert sizes["HIGH"] == pytest.approx(0.10, abs=0.001)  # Kelly above the cap
    if not ood_skipped:
        assert sizes["ODD"] == pytest.approx(0.05, abs=0.001)  # half size
