"""The model sets the service is serving, and how they change: load by alias from the
MLflow registry, watch the aliases, and swap atomically.

A reload loads the new sets *beside* the old ones; only when every load succeeded is the
single `ServedModels` reference replaced, which is atomic in Python. Requests already in
flight keep the reference they read and finish on the old models. A set that fails to
load leaves the old one serving, and the reason is kept for `GET /models`. A service
started before any model is trained comes up unready and keeps polling."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.errors import ModelUnavailableError
from serving.decision import ServedModels, request_names
from serving.predictor import ModelSetLike

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"

Loader = Callable[[str, str], ModelSetLike]  # (tracking_uri, alias) → model set
AliasReader = Callable[[str], dict[str, dict[str, str]]]  # tracking_uri → name → alias → v


@dataclass(frozen=True, slots=True)
class ReloadResult:
    reloaded: bool
    error: str | None


def default_loader(tracking_uri: str, alias: str) -> ModelSetLike:
    from models.loading import load_model_set

    # The challenger arm: challenger versions where a model has one, champion elsewhere.
    fallback = None if alias == CHAMPION else CHAMPION
    return load_model_set(tracking_uri, alias=alias, fallback_alias=fallback)


def default_alias_reader(tracking_uri: str) -> dict[str, dict[str, str]]:
    from models.registry import MODEL_NAMES, ModelRegistry

    registry = ModelRegistry(tracking_uri)
    present = set(registry.names())
    return {name: registry.aliases(name) for name in MODEL_NAMES if name in present}


class ModelSlots:
    """Holds the served champion/challenger sets and reloads them."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        loader: Loader = default_loader,
        alias_reader: AliasReader = default_alias_reader,
        on_reload: Callable[[ReloadResult], None] | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self._on_reload = on_reload
        self._loader = loader
        self._alias_reader = alias_reader
        self._served: ServedModels | None = None
        self._aliases: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.last_check_at: datetime | None = None
        self.reloads = 0
        self.load_seconds: dict[str, float] = {}  # alias → seconds its last load took
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- reading (hot path) ------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._served is not None

    @property
    def served(self) -> ServedModels | None:
        return self._served

    def current(self) -> ServedModels:
        served = self._served
        if served is None:
            raise ModelUnavailableError(
                f"no champion models loaded yet: {self.last_error or 'still loading'}",
                where="models",
            )
        return served

    # -- reloading ---------------------------------------------------------------------
    def reload(self, *, force: bool = False) -> ReloadResult:
        """Check the registry's aliases and load what changed (everything if `force`)."""
        result = self._reload(force=force)
        if self._on_reload is not None and (result.reloaded or result.error):
            self._on_reload(result)
        return result

    def _reload(self, *, force: bool) -> ReloadResult:
        with self._lock:
            self.last_check_at = datetime.now(UTC)
            try:
                aliases = self._alias_reader(self.tracking_uri)
            except Exception as exc:  # the registry may be down or corrupt: keep serving
                return self._failed(f"cannot read the registry aliases: {_reason(exc)}")
            wanted_champion = _alias_versions(aliases, CHAMPION)
            wanted_challenger = _alias_versions(aliases, CHALLENGER)
            served = self._served
            have_champion = dict(served.champion.versions) if served else None
            have_challenger = (
                dict(served.challenger.versions) if served and served.challenger else None
            )
            if not force and served is not None and aliases == self._aliases:
                # The registry points at what serves (again): any earlier error is over.
                self.last_error = None
                self.last_error_at = None
                return ReloadResult(reloaded=False, error=None)

            errors: list[str] = []
            champion = served.champion if served else None
            if force or champion is None or _changed(have_champion, wanted_champion):
                if not wanted_champion:
                    errors.append("champion: no model has a 'champion' alias (train first)")
                else:
                    try:
                        champion = self._timed(CHAMPION)
                    except Exception as exc:  # any failure to load leaves the old one serving
                        errors.append(f"champion {_listed(wanted_champion)}: {_reason(exc)}")
            challenger = served.challenger if served else None
            if not wanted_challenger:
                challenger = None  # challenger retired or promoted
            elif (
                force
                or challenger is None
                or have_challenger != _challenger_arm(aliases)
            ):
                try:
                    challenger = self._timed(CHALLENGER)
                except Exception as exc:
                    errors.append(f"challenger {_listed(wanted_challenger)}: {_reason(exc)}")
            if challenger is not None and champion is not None and (
                    challenger.timeframe != champion.timeframe):
                # One service answers one timeframe: an arm on other bars would answer a
                # share of the decisions with models that mean nothing on them.
                errors.append(
                    f"challenger {_listed(dict(challenger.versions))}: trained on "
                    f"{challenger.timeframe} bars, the champion on {champion.timeframe}; "
                    "not served")
                challenger = None
            if champion is None:
                return self._failed("; ".join(errors) or "no champion")

            changed = (
                served is None
                or champion is not served.champion
                or challenger is not served.challenger
            )
            if changed:
                self._served = ServedModels(champion=champion, challenger=challenger)
                self.reloads += 1
                logger.info(
                    "serving champion %s challenger %s",
                    champion.versions,
                    challenger.versions if challenger else None,
                )
            if errors:
                # Remember these aliases as not yet served so the next poll retries them.
                return self._failed("; ".join(errors), reloaded=changed)
            self._aliases = aliases
            self.last_error = None
            self.last_error_at = None
            return ReloadResult(reloaded=changed, error=None)

    def _timed(self, alias: str) -> ModelSetLike:
        started = time.perf_counter()
        model_set = self._loader(self.tracking_uri, alias)
        self.load_seconds[alias] = round(time.perf_counter() - started, 3)
        return model_set

    def start_polling(self, interval_seconds: float) -> None:
        """Check the aliases every `interval_seconds` in a daemon thread (0: never)."""
        if interval_seconds <= 0 or self._poller is not None:
            return

        def poll() -> None:
            while not self._stop.wait(interval_seconds):
                try:
                    self.reload()
                except Exception:  # never let the poller die
                    logger.exception("model reload poll failed")

        self._poller = threading.Thread(target=poll, name="model-reload-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)

    # -- reporting ---------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        served = self._served
        return {
            "ready": served is not None,
            "tracking_uri": _redact(self.tracking_uri),
            "champion": _describe(served.champion) if served else None,
            "challenger": _describe(served.challenger) if served and served.challenger else None,
            "swapped_at": served.loaded_at.isoformat() if served else None,
            "load_seconds": dict(self.load_seconds),
            "registry_aliases": self._aliases,
            "reloads": self.reloads,
            "last_check_at": self.last_check_at.isoformat() if self.last_check_at else None,
            "last_reload_error": self.last_error,
            "last_reload_error_at": (
                self.last_error_at.isoformat() if self.last_error_at else None
            ),
        }

    def _failed(self, message: str, *, reloaded: bool = False) -> ReloadResult:
        self.last_error = message
        self.last_error_at = datetime.now(UTC)
        logger.warning("model reload: %s", message)
        return ReloadResult(reloaded=reloaded, error=message)


def _alias_versions(aliases: dict[str, dict[str, str]], alias: str) -> dict[str, str]:
    return {name: found[alias] for name, found in aliases.items() if alias in found}


def _challenger_arm(aliases: dict[str, dict[str, str]]) -> dict[str, str]:
    """What the challenger arm serves: each model's challenger, or its champion where it
    has none (the loader's fallback), so a champion move reloads the arm too."""
    return {
        name: found.get(CHALLENGER, found[CHAMPION])
        for name, found in aliases.items()
        if CHALLENGER in found or CHAMPION in found
    }


def _changed(have: dict[str, str] | None, wanted: dict[str, str]) -> bool:
    if have is None:
        return True
    # A model without this alias is served from another alias by the loader; only the
    # models that do carry it decide whether the set must be reloaded.
    return any(have.get(name) != version for name, version in wanted.items())


def _describe(model_set: ModelSetLike) -> dict[str, object]:
    return {
        "versions": dict(model_set.versions),
        "loaded_at": model_set.loaded_at.isoformat(),
        "request_features": request_names(model_set),
        "timeframe": model_set.timeframe,
        "runtimes": dict(getattr(model_set, "runtimes", {}) or {}),
    }


def _listed(versions: dict[str, str]) -> str:
    return "(" + ", ".join(f"{name} v{version}" for name, version in sorted(versions.items())) + ")"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _redact(uri: str) -> str:
    # A tracking URI may carry a password (postgresql://user:pass@host/db).
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri
