"""One reason category per refused signal, whichever engine wrote the journal row: the
decision policy's categories (`ev`, `gate`, `ood`, `regime`, `sizing`, `risk`, `paused`,
`model_unavailable`), read from the row's `category` when the journal has one, else
derived from the action and the rule the engine journaled. An operator's pause is
`paused` whatever else the row says."""

from __future__ import annotations

from trading.risk import HALT_RULE, PAUSE_RULE

ENTERED = "entered"

_BY_ACTION = {
    "gated": "gate",
    "regime_mismatch": "regime",
    "model_unavailable": "model_unavailable",
    "invalid_features": "model_unavailable",
    "model_error": "model_unavailable",
    "no_features": "model_unavailable",
    "invalid_exits": "model_unavailable",
}
_BY_RULE = {PAUSE_RULE: "paused", HALT_RULE: "paused", "sizing": "sizing"}


def reason_category(action: str, detail: str, category: str | None = None) -> str:
    """The refusal's category ("" for an entry)."""
    if action == ENTERED:
        return ""
    rule = detail.split(":", 1)[0].strip() if ":" in detail else ""
    if rule == PAUSE_RULE:
        return "paused"
    if category:
        return category
    if action == "rejected":
        return _BY_RULE.get(rule, "risk")
    return _BY_ACTION.get(action, action)
