"""Sticky A/B routing: stable, share-accurate, champion-only without a challenger."""

from __future__ import annotations

import hashlib

import pytest

from serving.router import ABRouter, RoutingConfig, bucket


def _ids(count: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(count)]


def test_the_bucket_is_a_pure_function_of_the_signal_id() -> None:
    # Pinned values: a change here would re-shuffle live A/B arms between releases.
    expected = int.from_bytes(hashlib.sha256(b"tradewind-ab|abc").digest()[:8], "big") / 2**64
    assert bucket("abc") == expected
    assert 0.0 <= bucket("abc") < 1.0


@pytest.mark.parametrize("share", [0.0, 0.05, 0.2, 0.5, 1.0])
def test_the_challenger_share_holds_over_many_signals(share: float) -> None:
    router = ABRouter(RoutingConfig(challenger_share=share))
    ids = _ids(20_000)
    to_challenger = sum(router.route(i, has_challenger=True).variant == "challenger" for i in ids)
    assert abs(to_challenger / len(ids) - share) < 0.01


def test_the_same_signal_always_gets_the_same_arm() -> None:
    first = ABRouter(RoutingConfig(challenger_share=0.3))
    second = ABRouter(RoutingConfig(challenger_share=0.3))  # "another worker"
    for signal_id in _ids(500):
        assert (
            first.route(signal_id, has_challenger=True)
            == first.route(signal_id, has_challenger=True)
            == second.route(signal_id, has_challenger=True)
        )


def test_without_a_challenger_everything_goes_to_the_champion() -> None:
    router = ABRouter(RoutingConfig(challenger_share=1.0, shadow=True))
    routes = {router.route(i, has_challenger=False) for i in _ids(200)}
    assert {(route.variant, route.shadow) for route in routes} == {("champion", False)}


def test_shadow_mode_shadows_only_champion_decisions() -> None:
    router = ABRouter(RoutingConfig(challenger_share=0.2, shadow=True))
    routes = [router.route(i, has_challenger=True) for i in _ids(1000)]
    assert all(route.shadow for route in routes if route.variant == "champion")
    assert not any(route.shadow for route in routes if route.variant == "challenger")


def test_a_share_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="challenger_share"):
        RoutingConfig(challenger_share=1.5)
