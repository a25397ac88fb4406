"""The Feast repository of a data directory: `<data_dir>/feast/feature_store.yaml`
(rendered from `features/repo/feature_store.yaml.template` and the feature-store
settings), its registry and online store, and the repository's objects
(`features.repo.definitions`) pointing at the offline files. The offline store, the
online store and Feast's joins share one `FeastRepo`; Feast itself is imported on first
use (its imports cost seconds).

Back ends by type string, as Feast names them:
- registry `file` (default: `<root>/registry.db`) or `sql` (Feast's SQL registry, e.g. in
  PostgreSQL: `connection_string` is its SQLAlchemy URL);
- online store `sqlite` (default: `<root>/online.db`) or `redis` (`connection_string`
  `host:port[,db=N]`). A store that is not Feast's own (`memory`) leaves Feast on SQLite."""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from core.errors import ConfigError
from core.settings import StoreBackend

if TYPE_CHECKING:
    import feast

    from features.repo.definitions import RepoObjects

TEMPLATE = Path(__file__).parent / "repo" / "feature_store.yaml.template"
PROJECT = "tradewind"
REGISTRY_TYPES = ("file", "sql")
REGISTRY_CACHE_SECONDS = 60  # how stale a process's copy of the SQL registry may get


def _server(backend: StoreBackend, part: str) -> str:
    if not backend.connection_string:
        raise ConfigError(f"the {backend.type} {part} needs a connection_string",
                          where="feature_store")
    return backend.connection_string


def registry_config(backend: StoreBackend, root: Path) -> str | dict[str, Any]:
    """Feast's `registry:` entry for a registry back end."""
    if backend.type == "file":
        return str(root / "registry.db")
    if backend.type == "sql":
        return {"registry_type": "sql", "path": _server(backend, "registry"),
                "cache_ttl_seconds": REGISTRY_CACHE_SECONDS,
                "sqlalchemy_config_kwargs": {"pool_pre_ping": True}}
    raise ConfigError(f"unknown registry type {backend.type!r}; choose one of "
                      f"{', '.join(REGISTRY_TYPES)}", where="feature_store")


def online_config(backend: StoreBackend, root: Path) -> dict[str, Any]:
    """Feast's `online_store:` entry for an online back end."""
    if backend.type == "redis":
        return {"type": "redis", "redis_type": "redis",
                "connection_string": _server(backend, "online store")}
    return {"type": "sqlite", "path": str(root / "online.db")}


class FeastRepo:
    def __init__(
        self,
        root: Path,
        bar_dir: Path,
        trade_dir: Path,
        *,
        prepare: Callable[[], None] = lambda: None,
        online: StoreBackend | None = None,
        registry: StoreBackend | None = None,
    ) -> None:
        self.root = root
        self.bar_dir = bar_dir
        self.trade_dir = trade_dir
        self.online = online or StoreBackend(type="sqlite")
        self.registry = registry or StoreBackend(type="file")
        registry_config(self.registry, root)  # refuse a bad registry before any work
        self._prepare = prepare  # makes the offline files Feast's sources point at
        self._feast: feast.FeatureStore | None = None
        self._objects: RepoObjects | None = None

    def render_config(self) -> Path:
        """Render feature_store.yaml for this data directory; returns its path."""
        self.root.mkdir(parents=True, exist_ok=True)
        backends = {"registry": registry_config(self.registry, self.root),
                    "online_store": online_config(self.online, self.root)}
        text = string.Template(TEMPLATE.read_text()).substitute(
            backends=yaml.safe_dump(backends, sort_keys=False).rstrip())
        target = self.root / "feature_store.yaml"
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
        return target

    def objects(self) -> RepoObjects:
        if self._objects is None:
            from features.repo.definitions import build

            self._objects = build(self.bar_dir, self.trade_dir)
        return self._objects

    def store(self) -> feast.FeatureStore:
        """The Feast store for this data directory (created on first use)."""
        if self._feast is None:
            import feast

            self.render_config()
            self._prepare()
            self._feast = feast.FeatureStore(repo_path=str(self.root))
        return self._feast

    def apply(self) -> None:
        """Register the entity, sources, push sources and feature views in the registry."""
        self._prepare()
        self.store().apply(self.objects().all())  # type: ignore[arg-type]
