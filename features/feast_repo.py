"""The Feast repository of a data directory: `<data_dir>/feast/feature_store.yaml`
(rendered from `features/repo/feature_store.yaml.template`), its registry and SQLite
online database, and the repository's objects (`features.repo.definitions`) pointing at
the offline files. The offline store, the SQLite online store and Feast's joins share
one `FeastRepo`; Feast itself is imported on first use (its imports cost seconds)."""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import feast

    from features.repo.definitions import RepoObjects

TEMPLATE = Path(__file__).parent / "repo" / "feature_store.yaml.template"
PROJECT = "tradewind"


class FeastRepo:
    def __init__(
        self,
        root: Path,
        bar_dir: Path,
        trade_dir: Path,
        *,
        prepare: Callable[[], None] = lambda: None,
    ) -> None:
        self.root = root
        self.bar_dir = bar_dir
        self.trade_dir = trade_dir
        self._prepare = prepare  # makes the offline files Feast's sources point at
        self._feast: feast.FeatureStore | None = None
        self._objects: RepoObjects | None = None

    def render_config(self) -> Path:
        """Render feature_store.yaml for this data directory; returns its path."""
        self.root.mkdir(parents=True, exist_ok=True)
        text = string.Template(TEMPLATE.read_text()).substitute(
            registry_path=str(self.root / "registry.db"),
            online_path=str(self.root / "online.db"),
        )
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
