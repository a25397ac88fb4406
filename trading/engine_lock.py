"""One engine per journal and per account: `tradewind trade` holds an exclusive lock on
each for its whole life, so a second engine on the same journal or the same broker
account is refused at start instead of adopting the first one's positions.

The locks are `flock`s on small files: the journal's beside its SQLite file (any other
journal URL, and every account, in one folder of the machine's temporary directory,
named by a hash of what they lock, never by a key). The kernel drops a lock when its
holder dies, SIGKILL included, so a crashed engine never blocks its own restart. They
guard engines on one machine; engines on two machines sharing an account are beyond
them."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError

LOCK_FOLDER = "tradewind-engine-locks"


@dataclass(frozen=True)
class Claim:
    """One thing an engine must own alone: what it is (for the refusal) and its lock file."""

    what: str
    path: Path


def journal_claim(journal_url: str) -> Claim | None:
    """The journal's claim; None for an in-memory journal (no other engine can see it)."""
    prefix = "sqlite:///"
    if journal_url in ("sqlite://", "sqlite:///:memory:"):
        return None
    if journal_url.startswith(prefix):
        database = Path(journal_url[len(prefix):]).resolve()
        return Claim(f"the journal {database}", database.with_name(f"{database.name}.engine.lock"))
    return Claim("the journal", _shared_lock(f"journal|{journal_url}"))


def account_claim(broker_url: str | None, api_key: str | None) -> Claim:
    """The broker account's claim: the key at this broker (Alpaca when no URL is given)."""
    venue = (broker_url or "alpaca").rstrip("/")
    return Claim(f"the account at {venue}", _shared_lock(f"account|{venue}|{api_key or ''}"))


def _shared_lock(identity: str) -> Path:
    digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / LOCK_FOLDER / f"{digest}.lock"


class EngineLock:
    """Holds every claim until `release` (or the process ends)."""

    def __init__(self, claims: list[Claim]) -> None:
        self.claims = claims
        self._held: list[int] = []

    def acquire(self) -> EngineLock:
        try:
            for claim in self.claims:
                self._held.append(_take(claim))
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        for descriptor in self._held:
            with contextlib.suppress(OSError):
                os.close(descriptor)  # closing drops the flock
        self._held = []

    def __enter__(self) -> EngineLock:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()


def _take(claim: Claim) -> int:
    claim.path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(claim.path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(descriptor)
        raise ConfigError(
            f"another engine (pid {holder}) already trades {claim.what}; one engine per "
            "journal and account: stop it first",
            where="trade",
        ) from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, str(os.getpid()).encode(), 0)
    return descriptor
