"""Which listen addresses stay on this machine, and the rule every server of ours obeys:
beyond loopback only with a secret (the model service's token, the engine API's token,
the paper exchange's key pair). One definition, imported by each server's edge."""

from __future__ import annotations

import hmac
import ipaddress

from core.errors import ConfigError


def is_loopback(host: str) -> bool:
    """Whether `host` only answers on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def require_secret_beyond_loopback(host: str, has_secret: bool, *, what: str, hint: str,
                                   where: str) -> None:
    """Refuse to listen on `host` beyond loopback without a secret (one clear line)."""
    if not has_secret and not is_loopback(host):
        raise ConfigError(
            f"{what} would listen on {host}, beyond loopback, without {hint} "
            f"(or bind it to 127.0.0.1)",
            where=where,
        )


def same_secret(presented: str | bytes | None, expected: str | bytes) -> bool:
    """Constant-time comparison of a presented secret with the expected one."""
    if presented is None:
        return False
    given = presented.encode() if isinstance(presented, str) else presented
    wanted = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(given, wanted)
