"""The model registry lifecycle: which version of each model serves (`champion`), which
one is on trial in the A/B arm (`challenger`), and which one to fall back to (`previous`).

Every move records why: the version that moves gets a tag with the reason and time, and
the registered model keeps a `last_change` tag, so the MLflow UI tells the story. The
version description is the model card written at registration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from core.bars import DAILY
from core.errors import ConfigError, NotFoundError
from models.tracker import prepare_store

MODEL_NAMES: tuple[str, ...] = (
    "signal_quality",
    "exit_optimizer",
    "regime_classifier",
    "risk_predictor",
)
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
ALIASES: tuple[str, ...] = (CHAMPION, CHALLENGER, PREVIOUS)
# The bar timeframe a version was trained on: a tag of its training run and of the
# registered version, and metadata of the logged model. Versions from before it was
# recorded were all trained on daily bars.
TIMEFRAME_KEY = "timeframe"
UNRECORDED_TIMEFRAME = DAILY


@dataclass(frozen=True, slots=True)
class TrainingWindow:
    """What a version was trained on, from its training run's tags: the data window, the
    end of the rows its final model was fitted on (the out-of-time start) and its inputs."""

    version: str
    run_id: str
    start: str
    end: str
    features: list[str]


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One registered version, as `tradewind models list` shows it."""

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created_at: datetime
    description: str
    tags: dict[str, str]

    @property
    def timeframe(self) -> str:
        """The bars it was trained on (1Day when the version predates the tag)."""
        return self.tags.get(TIMEFRAME_KEY) or UNRECORDED_TIMEFRAME


class ModelRegistry:
    """Aliases and model cards of the four registered models in one MLflow store."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow import MlflowClient

        prepare_store(tracking_uri)
        self.tracking_uri = tracking_uri
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # -- registration -------------------------------------------------------------------

    def register(
        self,
        name: str,
        model_uri: str,
        *,
        run_id: str,
        model_card: str,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Register a logged model as a new version of `name`, with its model card as the
        description and the bar timeframe of its run (`TIMEFRAME_KEY`) among its tags. The
        first version of a model becomes `champion`. Registering the same
        logged model of the same run again returns its version (nothing duplicated)."""
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
        except MlflowException:
            self._client.create_registered_model(
                name, description=f"Tradewind {name.replace('_', ' ')} model"
            )
        source, model_id = model_uri, None
        if model_uri.startswith("models:/m-"):
            # A logged model (MLflow 3): register its artifact folder directly, so the
            # registry never has to resolve the URI through a process-wide tracking URI.
            model_id = model_uri.removeprefix("models:/")
            source = self._client.get_logged_model(model_id).artifact_location
        # Idempotent on the run: a registration killed after the version was created (or
        # re-run) finds that version instead of adding a duplicate, then completes it.
        existing = [
            v for v in self._client.search_model_versions(f"name = '{name}'")
            if v.run_id == run_id and v.source == source
        ]
        if existing:
            version = min(existing, key=lambda v: int(v.version))
        else:
            version = self._client.create_model_version(
                name,
                source=source,
                run_id=run_id,
                description=model_card,
                tags={TIMEFRAME_KEY: self._run_timeframe(run_id), **(tags or {})},
                model_id=model_id,
            )
        number = str(version.version)
        if CHAMPION not in self.aliases(name):
            self._move(name, CHAMPION, number, "first trained version", event="champion")
        return number

    # -- lifecycle ----------------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, str]:
        """Alias → version for one model (only the aliases that are set)."""
        model = self._model(name)
        return {alias: str(version) for alias, version in model.aliases.items()}

    def promote(self, name: str, reason: str) -> dict[str, str]:
        """challenger → champion, old champion → previous; the challenger alias is removed."""
        current = self.aliases(name)
        if CHALLENGER not in current:
            raise NotFoundError(f"model '{name}' has no challenger to promote", where="registry")
        challenger = current[CHALLENGER]
        champion = current.get(CHAMPION)
        if champion is not None:
            self._move(name, PREVIOUS, champion, reason, event="demoted")
        self._move(name, CHAMPION, challenger, reason, event="promoted")
        self._client.delete_registered_model_alias(name, CHALLENGER)
        return self.aliases(name)

    def rollback(self, name: str, reason: str) -> dict[str, str]:
        """previous → champion; the rolled-back champion is tagged with the reason and the
        `previous` alias is cleared so a second rollback cannot bounce back."""
        current = self.aliases(name)
        if PREVIOUS not in current:
            raise NotFoundError(f"model '{name}' has no previous version to roll back to",
                                where="registry")
        champion = current.get(CHAMPION)
        if champion is not None:
            self._tag(name, champion, "rolled_back", reason)
        self._move(name, CHAMPION, current[PREVIOUS], reason, event="restored")
        self._client.delete_registered_model_alias(name, PREVIOUS)
        return self.aliases(name)

    def set_challenger(self, name: str, version: str, reason: str) -> dict[str, str]:
        """Put `version` in the A/B arm."""
        self._version(name, version)
        if self.aliases(name).get(CHAMPION) == version:
            raise ConfigError(f"version {version} of '{name}' is already the champion",
                              where="registry")
        self._move(name, CHALLENGER, version, reason, event="challenger")
        return self.aliases(name)

    def retire_challenger(self, name: str, reason: str) -> dict[str, str]:
        """Take the challenger out of the A/B arm (it lost, or is no longer wanted)."""
        current = self.aliases(name)
        if CHALLENGER not in current:
            raise NotFoundError(f"model '{name}' has no challenger to retire", where="registry")
        self._tag(name, current[CHALLENGER], "retired", reason)
        self._client.delete_registered_model_alias(name, CHALLENGER)
        self._note(name, f"retired challenger v{current[CHALLENGER]}: {reason}")
        return self.aliases(name)

    def make_champion(self, name: str, version: str, reason: str) -> dict[str, str]:
        """Make `version` the champion (old champion → previous) through the challenger →
        promote path, so every move records its reason. A no-op when it already is."""
        if self.aliases(name).get(CHAMPION) == version:
            return self.aliases(name)
        self.set_challenger(name, version, reason)
        return self.promote(name, reason)

    # -- reading ------------------------------------------------------------------------

    def aliases_by_alias(self) -> dict[str, dict[str, str]]:
        """alias → {model name → version} for champion, challenger and previous, over the
        four models present in the store."""
        present = set(self.names())
        by_alias: dict[str, dict[str, str]] = {alias: {} for alias in ALIASES}
        for name in MODEL_NAMES:
            if name not in present:
                continue
            for alias, version in self.aliases(name).items():
                if alias in by_alias:
                    by_alias[alias][name] = version
        return by_alias

    def training_window(self, name: str, alias: str = CHAMPION) -> TrainingWindow:
        """The training window of the version an alias points at (NotFoundError when its
        run has no `data_window` tag)."""
        from models.tracker import RunReader

        version = self.version_of(name, alias)
        run_id = self.run_id(name, version)
        tags = RunReader(self.tracking_uri).tags(run_id)
        window = tags.get("data_window", "")
        if ".." not in window:
            raise NotFoundError(
                f"run {run_id} of {name} v{version} has no data_window tag", where="registry"
            )
        start, end = window.split("..", 1)
        return TrainingWindow(
            version=version,
            run_id=run_id,
            start=start,
            end=tags.get("out_of_time_start") or end,
            features=[feature for feature in tags.get("feature_list", "").split(",") if feature],
        )

    def names(self) -> list[str]:
        """Registered model names present in the store."""
        return sorted(model.name for model in self._client.search_registered_models())

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of `name`, newest first."""
        model = self._model(name)
        by_version: dict[str, list[str]] = {}
        for alias, version in model.aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        found = self._client.search_model_versions(f"name = '{name}'")
        infos = [
            VersionInfo(
                name=name,
                version=str(version.version),
                aliases=tuple(sorted(by_version.get(str(version.version), []))),
                run_id=version.run_id,
                created_at=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
                description=version.description or "",
                tags=dict(version.tags),
            )
            for version in found
        ]
        return sorted(infos, key=lambda info: int(info.version), reverse=True)

    def version_of(self, name: str, alias: str) -> str:
        """The version an alias points at, or NotFoundError naming both."""
        current = self.aliases(name)
        if alias not in current:
            raise NotFoundError(f"model '{name}' has no '{alias}' version", where="registry")
        return current[alias]

    def download_uri(self, name: str, version: str) -> str:
        """Where a version's files are (resolved with this registry's own client)."""
        self._version(name, version)
        return str(self._client.get_model_version_download_uri(name, version))

    def run_id(self, name: str, version: str) -> str:
        """The training run that produced a version."""
        run_id = self._version(name, version).run_id
        if not run_id:
            raise NotFoundError(f"version {version} of '{name}' has no training run",
                                where="registry")
        return str(run_id)

    # -- internals ----------------------------------------------------------------------

    def _run_timeframe(self, run_id: str) -> str:
        """The timeframe its training run recorded: every registration path (train,
        retrain) tags the version with it."""
        from mlflow.exceptions import MlflowException

        try:
            recorded = self._client.get_run(run_id).data.tags.get(TIMEFRAME_KEY)
        except MlflowException:
            recorded = None
        return recorded or UNRECORDED_TIMEFRAME

    def _model(self, name: str):  # type: ignore[no-untyped-def]
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_registered_model(name)
        except MlflowException:
            raise NotFoundError(
                f"no registered model '{name}' in {self.tracking_uri} (run `tradewind train`)",
                where="registry",
            ) from None

    def _version(self, name: str, version: str):  # type: ignore[no-untyped-def]
        from mlflow.exceptions import MlflowException

        self._model(name)
        try:
            return self._client.get_model_version(name, version)
        except MlflowException:
            raise NotFoundError(f"model '{name}' has no version {version}",
                                where="registry") from None

    def _move(self, name: str, alias: str, version: str, reason: str, *, event: str) -> None:
        self._client.set_registered_model_alias(name, alias, version)
        self._tag(name, version, event, reason)
        self._note(name, f"v{version} → {alias} ({event}): {reason}")

    def _tag(self, name: str, version: str, event: str, reason: str) -> None:
        stamp = datetime.now(tz=UTC).isoformat(timespec="seconds")
        self._client.set_model_version_tag(name, version, f"{event}_reason", reason)
        self._client.set_model_version_tag(name, version, f"{event}_at", stamp)

    def _note(self, name: str, change: str) -> None:
        self._client.set_registered_model_tag(name, "last_change", change)
