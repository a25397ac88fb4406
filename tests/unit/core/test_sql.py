"""`core.sql.sql_engine`: the one way the journal, the decision log and the A/B outcome
store open SQLite (WAL, NORMAL sync, a busy timeout, the folder made) or a server URL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from core.sql import BUSY_TIMEOUT_MS, sql_engine


def pragmas(url: str) -> tuple[str, int, int]:
    engine = sql_engine(url)
    try:
        with engine.connect() as connection:
            mode = connection.execute(text("PRAGMA journal_mode")).scalar_one()
            sync = connection.execute(text("PRAGMA synchronous")).scalar_one()
            busy = connection.execute(text("PRAGMA busy_timeout")).scalar_one()
    finally:
        engine.dispose()
    return str(mode), int(sync), int(busy)


def test_a_sqlite_file_gets_its_folder_wal_normal_sync_and_a_busy_timeout(tmp_path: Path) -> None:
    database = tmp_path / "deep" / "er" / "journal.db"
    assert pragmas(f"sqlite:///{database}") == ("wal", 1, BUSY_TIMEOUT_MS)  # 1: NORMAL
    assert database.parent.is_dir()


def test_a_reader_does_not_make_the_folder(tmp_path: Path) -> None:
    sql_engine(f"sqlite:///{tmp_path / 'absent' / 'log.db'}", create=False).dispose()
    assert not (tmp_path / "absent").exists()


def test_an_in_memory_database_is_one_shared_connection() -> None:
    engine = sql_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (7)"))
    with engine.connect() as other:
        assert other.execute(text("SELECT x FROM t")).scalar_one() == 7
    assert pragmas("sqlite://")[0] == "memory"


def test_a_server_url_is_pinged_before_use() -> None:
    engine = sql_engine("postgresql+psycopg://user@127.0.0.1:1/none")
    assert engine.pool._pre_ping  # a restarted server is reconnected to
