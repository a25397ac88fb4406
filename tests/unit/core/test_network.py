"""Loopback detection, the rule 'beyond loopback only with a secret' and the
constant-time comparison every server of ours uses."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.network import is_loopback, require_secret_beyond_loopback, same_secret


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.org", ""])
def test_hosts_beyond_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_beyond_loopback_needs_a_secret_in_one_clear_line() -> None:
    require_secret_beyond_loopback("127.0.0.1", False, what="x", hint="a token", where="w")
    require_secret_beyond_loopback("0.0.0.0", True, what="x", hint="a token", where="w")
    with pytest.raises(ConfigError) as refused:
        require_secret_beyond_loopback("0.0.0.0", False, what="the model service",
                                       hint="a token (TRADEWIND_API_TOKEN)", where="serve")
    assert "\n" not in str(refused.value)
    assert "the model service would listen on 0.0.0.0, beyond loopback, without a token" in (
        str(refused.value))


def test_same_secret() -> None:
    assert same_secret("s3cret", "s3cret")
    assert same_secret(b"s3cret", "s3cret")
    assert not same_secret("s3cre", "s3cret")
    assert not same_secret("s3cret ", "s3cret")
    assert not same_secret("", "s3cret")
    assert not same_secret(None, "s3cret")
