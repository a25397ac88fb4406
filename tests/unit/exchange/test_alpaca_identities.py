"""Alpaca's order ids and the engine's names, without a server."""

from __future__ import annotations

from core.types import BracketLeg
from trading.adapters.alpaca.identities import OrderIdentities

from .alpaca_payloads import alpaca_order, bracket


def test_bracket_legs_get_the_engine_names_whatever_alpaca_calls_them() -> None:
    identities = OrderIdentities()
    raw = bracket("tw-1")
    identities.learn(raw)
    assert raw.legs is not None
    take_profit, stop_loss = raw.legs
    assert identities.name(take_profit) == "tw-1-tp"
    assert identities.name(stop_loss) == "tw-1-sl"
    assert identities.order_id("tw-1") == str(raw.id)
    assert identities.order_id(BracketLeg.STOP_LOSS.leg_id("tw-1")) == str(stop_loss.id)
    assert identities.parent_of(stop_loss, "tw-1-sl") == "tw-1"
    assert identities.parent_of(raw, "tw-1") is None


def test_a_leg_fetched_alone_is_known_by_its_class() -> None:
    identities = OrderIdentities()
    lone = alpaca_order(client_order_id="tw-9-sl", order_class="bracket", type="stop")
    assert identities.parent_of(lone, "tw-9-sl") == "tw-9"
    simple = alpaca_order(client_order_id="x-sl")
    assert identities.parent_of(simple, "x-sl") is None


def test_replacements_map_back_to_the_engine_name() -> None:
    identities = OrderIdentities()
    identities.learn(bracket("tw-1"))
    assert identities.next_replacement("tw-1-sl") == "tw-1-sl~r1"
    assert identities.next_replacement("tw-1-sl") == "tw-1-sl~r2"
    replacement = alpaca_order(client_order_id="tw-1-sl~r2", type="stop", status="new")
    identities.replaced("tw-1-sl", str(replacement.id))
    assert identities.name(replacement) == "tw-1-sl"
    assert identities.order_id("tw-1-sl") == str(replacement.id)
    # Seen again after a restart (a fresh map): the client id still names it, and the
    # replacement count continues after the highest seen.
    fresh = OrderIdentities()
    fresh.learn(replacement)
    assert fresh.name(replacement) == "tw-1-sl"
    assert fresh.next_replacement("tw-1-sl") == "tw-1-sl~r3"
    old = alpaca_order(client_order_id="tw-1-sl~r1", type="stop", status="replaced")
    fresh.learn(old)
    assert fresh.order_id("tw-1-sl") == str(replacement.id)  # a replaced version is not live
