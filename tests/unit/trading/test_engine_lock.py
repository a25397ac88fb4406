"""The engine's locks: real `flock`s on files in a temporary folder (a second holder is
a second open file, as a second process would have)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import ConfigError
from trading.engine_lock import Claim, EngineLock, account_claim, journal_claim


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    claim = Claim("the journal x", tmp_path / "journal.db.engine.lock")
    with EngineLock([claim]):
        with pytest.raises(ConfigError) as refused:
            EngineLock([claim]).acquire()
        assert refused.value.message == (
            f"another engine (pid {os.getpid()}) already trades the journal x; one engine "
            "per journal and account: stop it first"
        )
    with EngineLock([claim]):  # released on exit: a new holder gets it
        pass


def test_a_refused_claim_releases_those_taken_before_it(tmp_path: Path) -> None:
    journal = Claim("the journal", tmp_path / "a.lock")
    account = Claim("the account", tmp_path / "b.lock")
    with EngineLock([account]), pytest.raises(ConfigError, match="the account"):
        EngineLock([journal, account]).acquire()
    with EngineLock([journal]):  # not left held by the refused attempt
        pass


def test_claims_name_the_journal_file_and_hash_the_account_key(tmp_path: Path) -> None:
    claim = journal_claim(f"sqlite:///{tmp_path / 'data' / 'journal.db'}")
    assert claim is not None
    assert claim.path == tmp_path / "data" / "journal.db.engine.lock"
    assert journal_claim("sqlite://") is None  # in memory: nobody else can open it
    one = account_claim("http://127.0.0.1:8765", "key-1")
    assert one.what == "the account at http://127.0.0.1:8765"
    assert "key-1" not in str(one.path)
    assert one.path != account_claim("http://127.0.0.1:8765", "key-2").path
    assert one.path != account_claim("http://127.0.0.1:9999", "key-1").path
    assert one.path == account_claim("http://127.0.0.1:8765/", "key-1").path
