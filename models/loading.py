"""Loading the four registered models for inference: `load_model_set(tracking_uri,
alias)` resolves `models:/<name>@<alias>` for each model and returns one `ModelSet` with
fast, single-row-friendly predict methods (the serving hot path). `load_logged_set` does
the same for models a training run logged but nobody registered (the retrain flow's
candidates), through the same trusted loaders.

Safety: scikit-learn models are read with skops against the trusted-type lists in
`models.schema` (defined in our code, not read from the model's own files); the PyTorch
model is a `torch.export` archive (no pickle); XGBoost uses its own format. Nothing is
loaded from outside the registry.

Speed: the random forest is evaluated with ONNX Runtime when its ONNX twin (logged with
the model) reproduces the scikit-learn probabilities on the logged input example;
otherwise it falls back to scikit-learn with `n_jobs=1`. XGBoost uses `inplace_predict`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.bars import DAILY
from core.errors import DataValidationError, ModelUnavailableError, NotFoundError
from core.regimes import RULE_FEATURES
from models.ood import OutOfDistributionDetector
from models.policy import FittedPolicy
from models.schema import (
    CALIBRATION_FILE,
    DRAWDOWN_COLUMNS,
    EXIT_COLUMNS,
    EXIT_OPTIMIZER,
    INPUTS_FILE,
    ONNX_FILE,
    OOD_FILE,
    POLICY_FILE,
    REGIME_CLASSIFIER,
    REGIME_COLUMNS,
    REGIME_SKILL_FILE,
    RISK_ONNX_FILES,
    RISK_PREDICTOR,
    RISK_PREDICTOR_TRUSTED_TYPES,
    SIGNAL_QUALITY,
    SIGNAL_QUALITY_TRUSTED_TYPES,
    STOP_LOSS_ATR_RANGE,
    TAKE_PROFIT_ATR_RANGE,
)

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _LoadedModel:
    name: str
    version: str
    inputs: list[str]
    predict: Predict  # float64 matrix in `inputs` order → raw output matrix/vector
    runtime: str  # what evaluates it: onnxruntime, sklearn, xgboost, torch


@dataclass
class ModelSet:
    """The four models of one alias, ready for inference on frames with `feature_names`."""

    versions: dict[str, str]
    feature_names: list[str]
    loaded_at: datetime
    alias: str = "champion"
    runtimes: dict[str, str] = field(default_factory=dict)
    # The decision policy fitted with the signal model (None: an older artifact) and
    # whether the regime model beat its majority baseline out of time.
    policy: FittedPolicy | None = None
    regime_skilled: bool = False
    # The bars all four were trained on (`core.bars.TIMEFRAMES`); models logged before it
    # was recorded were trained on daily bars.
    timeframe: str = DAILY
    _models: dict[str, _LoadedModel] = field(default_factory=dict, repr=False)
    _ood: OutOfDistributionDetector | None = field(default=None, repr=False)

    def win_probability(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability that the signal's trade wins net of costs, in [0, 1]."""
        out = self._run(SIGNAL_QUALITY, X)
        return np.clip(out.reshape(-1), 0.0, 1.0)

    def exits(self, X: pd.DataFrame) -> pd.DataFrame:
        """Stop-loss and take-profit distances in ATR multiples."""
        out = np.asarray(self._run(EXIT_OPTIMIZER, X), dtype=np.float64).reshape(len(X), 2)
        stop = np.clip(out[:, 0], *STOP_LOSS_ATR_RANGE)
        target = np.clip(out[:, 1], *TAKE_PROFIT_ATR_RANGE)
        return pd.DataFrame({EXIT_COLUMNS[0]: stop, EXIT_COLUMNS[1]: target}, index=X.index)

    def regime_probabilities(self, X: pd.DataFrame) -> pd.DataFrame:
        """Probabilities of the four regimes over the next bars (rows sum to 1)."""
        out = np.asarray(self._run(REGIME_CLASSIFIER, X), dtype=np.float64)
        return pd.DataFrame(out, columns=list(REGIME_COLUMNS), index=X.index)

    def drawdown(self, X: pd.DataFrame) -> pd.DataFrame:
        """Expected maximum adverse excursion of the trade (fraction of the entry price,
        0.02 = 2%) with its 10th and 90th percentile."""
        out = np.asarray(self._run(RISK_PREDICTOR, X), dtype=np.float64).reshape(len(X), 3)
        return pd.DataFrame(out, columns=list(DRAWDOWN_COLUMNS), index=X.index)

    def inputs(self, name: str) -> list[str]:
        """The ordered input columns of one model of the set."""
        model = self._models.get(name)
        if model is None:
            raise ModelUnavailableError(f"model '{name}' is not loaded", where="model set")
        return list(model.inputs)

    def out_of_distribution(self, X: pd.DataFrame) -> np.ndarray:
        """True where a row lies outside what the models saw in their training window."""
        if self._ood is None:
            return np.zeros(len(X), dtype=bool)
        matrix = self._matrix(X, self._ood.feature_names, "out_of_distribution")
        return self._ood.flags(matrix)

    # -- internals ----------------------------------------------------------------------

    def _run(self, name: str, X: pd.DataFrame) -> np.ndarray:
        model = self._models.get(name)
        if model is None:
            raise ModelUnavailableError(f"model '{name}' is not loaded", where="model set")
        return model.predict(self._matrix(X, model.inputs, name))

    @staticmethod
    def _matrix(X: pd.DataFrame, inputs: list[str], where: str) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):
            raise DataValidationError("expected a DataFrame of features", where=where)
        positions = X.columns.get_indexer(inputs)
        if (positions < 0).any():
            missing = [name for name, at in zip(inputs, positions, strict=True) if at < 0]
            raise DataValidationError(
                f"missing feature columns {missing[:10]}"
                + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""),
                where=where,
            )
        try:
            # whole-frame conversion then column pick: far cheaper than X[inputs] on the
            # one-row frames of the serving hot path
            return X.to_numpy(dtype=np.float64, na_value=np.nan)[:, positions]
        except (TypeError, ValueError) as exc:
            raise DataValidationError(f"non-numeric feature values: {exc}", where=where) from None


def load_model_set(
    tracking_uri: str, alias: str = "champion", *, fallback_alias: str | None = None
) -> ModelSet:
    """Load `models:/<name>@<alias>` of the four models from one MLflow store.

    With `fallback_alias`, a model without `alias` is taken at `fallback_alias` instead
    (a challenger arm where only some models have a challenger: the others serve their
    champion); at least one model must carry `alias` itself.

    Raises `NotFoundError` when a model or alias is missing and `ModelUnavailableError`
    when a registered model cannot be read."""
    from models.registry import MODEL_NAMES, ModelRegistry

    registry = ModelRegistry(tracking_uri)
    if fallback_alias is None:
        versions = {name: registry.version_of(name, alias) for name in MODEL_NAMES}
    else:
        current = {name: registry.aliases(name) for name in MODEL_NAMES}
        if not any(alias in found for found in current.values()):
            raise NotFoundError(f"no model has a '{alias}' version", where="registry")
        versions = {
            name: found[alias] if alias in found else registry.version_of(name, fallback_alias)
            for name, found in current.items()
        }
    folders = {
        name: _download(tracking_uri, registry.download_uri(name, version), name, version)
        for name, version in versions.items()
    }
    return _model_set(folders, versions, alias)


def _model_set(folders: dict[str, Path], versions: dict[str, str], alias: str) -> ModelSet:
    """Load every model folder with its side artifacts (OOD detector, policy, skill)."""
    models: dict[str, _LoadedModel] = {}
    for name, folder in folders.items():
        version = versions[name]
        inputs = _signature_inputs(folder, name)
        try:
            predict, runtime = _LOADERS[name](folder, version, inputs)
        except (NotFoundError, ModelUnavailableError):
            raise
        except Exception as exc:  # a corrupt or incompatible artifact: say which one
            raise ModelUnavailableError(
                f"cannot load version {version}: {type(exc).__name__}: {exc}", where=name
            ) from exc
        models[name] = _LoadedModel(name, version, inputs, predict, runtime)
    signal = folders.get(SIGNAL_QUALITY)
    ood_payload = _extra_json(signal, OOD_FILE)
    policy_payload = _extra_json(signal, POLICY_FILE)
    skill = _extra_json(folders.get(REGIME_CLASSIFIER), REGIME_SKILL_FILE)
    try:
        ood = None if ood_payload is None else OutOfDistributionDetector.from_dict(ood_payload)
        policy = None if policy_payload is None else FittedPolicy.from_dict(policy_payload)
    except (KeyError, TypeError, ValueError, DataValidationError) as exc:
        raise ModelUnavailableError(
            f"cannot read the policy or OOD artifact of version {versions[SIGNAL_QUALITY]}: "
            f"{exc}", where=SIGNAL_QUALITY,
        ) from exc
    regime_skilled = bool(skill and skill.get("skilled"))
    timeframe = _common_timeframe(folders, versions)
    feature_names: list[str] = []
    for model in models.values():
        feature_names += [name for name in model.inputs if name not in feature_names]
    extra = [] if ood is None else list(ood.feature_names)
    if policy is not None and not regime_skilled:
        extra += RULE_FEATURES  # the policy's rule-based regime reads them
    feature_names += [name for name in extra if name not in feature_names]
    return ModelSet(
        versions=versions,
        feature_names=feature_names,
        loaded_at=datetime.now(tz=UTC),
        alias=alias,
        runtimes={name: model.runtime for name, model in models.items()},
        policy=policy,
        regime_skilled=regime_skilled,
        timeframe=timeframe,
        _models=models,
        _ood=ood,
    )


def logged_timeframe(folder: Path) -> str:
    """The bar timeframe a logged model records in its MLmodel metadata (1Day when it
    predates the record)."""
    from mlflow.models import Model

    from models.registry import TIMEFRAME_KEY, UNRECORDED_TIMEFRAME

    metadata = Model.load(str(folder / "MLmodel")).metadata or {}
    return str(metadata.get(TIMEFRAME_KEY) or UNRECORDED_TIMEFRAME)


def _common_timeframe(folders: dict[str, Path], versions: dict[str, str]) -> str:
    """The one timeframe of a set; models trained on different bars never serve together."""
    found = {name: logged_timeframe(folder) for name, folder in folders.items()}
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{name} v{versions[name]} {tf}" for name, tf in sorted(found.items()))
        raise ModelUnavailableError(
            f"the models were trained on different bar timeframes ({listed}); train or "
            "promote one set of the same timeframe",
            where="model set",
        )
    return next(iter(found.values()), DAILY)


def _extra_json(folder: Path | None, name: str) -> Any:
    path = None if folder is None else folder / "extra_files" / name
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text())


def load_logged_set(tracking_uri: str, runs: dict[str, str]) -> ModelSet:
    """A `ModelSet` of logged (not necessarily registered) models, one training run per
    model name; each is versioned `run-<first 8 characters of the run id>`."""
    from models.tracker import RunReader

    reader = RunReader(tracking_uri)
    versions = {name: f"run-{run_id[:8]}" for name, run_id in runs.items()}
    folders = {
        name: _download(tracking_uri, reader.logged_model_location(run_id), name,
                        versions[name])
        for name, run_id in runs.items()
    }
    return _model_set(folders, versions, "candidate")


def _download(tracking_uri: str, artifact_uri: str, name: str, version: str) -> Path:
    import mlflow.artifacts

    if artifact_uri.startswith("file://"):
        # A local store (the embedded default): read the files in place, no copy.
        from urllib.parse import unquote, urlparse

        local_path = Path(unquote(urlparse(artifact_uri).path))
        if not local_path.is_dir():
            raise ModelUnavailableError(
                f"version {version}'s files are missing at {local_path}", where=name)
        return local_path
    try:
        # The version's own artifact location, not `models:/…`: resolving that would go
        # through MLflow's process-wide registry URI instead of `tracking_uri`.
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri, tracking_uri=tracking_uri
        )
    except Exception as exc:
        raise ModelUnavailableError(
            f"cannot download version {version} from {tracking_uri}: {exc}", where=name
        ) from exc
    return Path(local)


def _signature_inputs(folder: Path, name: str) -> list[str]:
    from mlflow.models import Model

    listed = folder / "extra_files" / INPUTS_FILE
    if listed.is_file():
        return [str(column) for column in json.loads(listed.read_text())]
    signature = Model.load(str(folder / "MLmodel")).signature
    if signature is None:
        raise ModelUnavailableError("the logged model has no signature", where=name)
    return list(signature.inputs.input_names())


def _example_rows(folder: Path, inputs: list[str]) -> np.ndarray | None:
    path = folder / "input_example.json"
    if not path.is_file():
        return None
    payload: Any = json.loads(path.read_text())
    frame = pd.DataFrame(payload["data"], columns=payload["columns"])
    return frame[inputs].to_numpy(dtype=np.float64, na_value=np.nan)


def _signal_quality(folder: Path, version: str, inputs: list[str]) -> tuple[Predict, str]:
    """The raw score (XGBoost `inplace_predict`, or the forest's ONNX twin / scikit-learn)
    through the logged Platt map."""
    calibration = _extra_json(folder, CALIBRATION_FILE)
    if calibration is None:
        raise ModelUnavailableError(
            f"version {version} has no {CALIBRATION_FILE} (an older format); retrain",
            where=SIGNAL_QUALITY,
        )
    slope, intercept = float(calibration["slope"]), float(calibration["intercept"])

    def platt(scores: np.ndarray) -> np.ndarray:
        p = np.clip(scores.astype(np.float64), 1e-4, 1 - 1e-4)
        return np.asarray(1.0 / (1.0 + np.exp(-(slope * np.log(p / (1 - p)) + intercept))))

    if calibration["estimator"] == "xgboost":
        score, runtime = _xgboost_scores(folder)
    else:
        score, runtime = _forest_scores(folder, inputs)

    def predict(matrix: np.ndarray) -> np.ndarray:
        return platt(score(matrix))

    return predict, runtime


def _xgboost_scores(folder: Path) -> tuple[Predict, str]:
    import xgboost

    files = sorted(folder.glob("model.*"))
    if not files:
        raise ModelUnavailableError("no XGBoost model file in the artifact", where=SIGNAL_QUALITY)
    booster = xgboost.Booster()
    booster.load_model(str(files[0]))
    booster.set_param({"nthread": 1})

    def score(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(booster.inplace_predict(matrix)).reshape(-1)

    return score, "xgboost"


def _forest_scores(folder: Path, inputs: list[str]) -> tuple[Predict, str]:
    import skops.io

    pipeline = skops.io.load(folder / "model.skops", trusted=list(SIGNAL_QUALITY_TRUSTED_TYPES))
    _single_threaded(pipeline)

    def sklearn_score(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(pipeline.predict_proba(matrix)[:, 1])

    onnx_path = folder / "extra_files" / ONNX_FILE
    example = _example_rows(folder, inputs)
    if not onnx_path.is_file() or example is None:
        return sklearn_score, "sklearn"
    session = _onnx_session(onnx_path)
    input_name = session.get_inputs()[0].name
    output_name = next(out.name for out in session.get_outputs() if "prob" in out.name)

    def onnx_score(matrix: np.ndarray) -> np.ndarray:
        forest = session.run([output_name], {input_name: matrix.astype(np.float32)})[0]
        return np.asarray(forest)[:, 1].astype(np.float64)

    # Trust the compiled twin only if it reproduces scikit-learn on the logged example.
    if np.allclose(onnx_score(example), sklearn_score(example), atol=1e-4):
        return onnx_score, "onnxruntime"
    return sklearn_score, "sklearn"


def _exit_optimizer(folder: Path, version: str, inputs: list[str]) -> tuple[Predict, str]:
    import xgboost

    files = sorted(folder.glob("model.*"))
    if not files:
        raise ModelUnavailableError("no XGBoost model file in the artifact", where=EXIT_OPTIMIZER)
    booster = xgboost.Booster()
    booster.load_model(str(files[0]))
    booster.set_param({"nthread": 1})

    def predict(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(booster.inplace_predict(matrix))

    return predict, "xgboost"


def _regime_classifier(folder: Path, version: str, inputs: list[str]) -> tuple[Predict, str]:
    import mlflow.pytorch
    import torch

    network = mlflow.pytorch.load_model(str(folder))

    def predict(matrix: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return network(torch.from_numpy(matrix.astype(np.float32))).numpy()

    return predict, "torch"


def _risk_predictor(folder: Path, version: str, inputs: list[str]) -> tuple[Predict, str]:
    import skops.io

    from models.risk import ordered_drawdowns

    model = skops.io.load(folder / "model.skops", trusted=list(RISK_PREDICTOR_TRUSTED_TYPES))

    def sklearn_predict(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_array(matrix))

    files = [folder / "extra_files" / name for name in RISK_ONNX_FILES]
    example = _example_rows(folder, inputs)
    if example is None or not all(path.is_file() for path in files):
        return sklearn_predict, "sklearn"
    sessions = [_onnx_session(path) for path in files]

    def onnx_predict(matrix: np.ndarray) -> np.ndarray:
        single = matrix.astype(np.float32)
        parts = [session.run(None, {session.get_inputs()[0].name: single})[0]
                 for session in sessions]
        return ordered_drawdowns(*parts)

    # float32 trees: agree with scikit-learn to well under a basis point of drawdown
    if np.allclose(onnx_predict(example), sklearn_predict(example), atol=1e-5):
        return onnx_predict, "onnxruntime"
    return sklearn_predict, "sklearn"


_LOADERS: dict[str, Callable[[Path, str, list[str]], tuple[Predict, str]]] = {
    SIGNAL_QUALITY: _signal_quality,
    EXIT_OPTIMIZER: _exit_optimizer,
    REGIME_CLASSIFIER: _regime_classifier,
    RISK_PREDICTOR: _risk_predictor,
}


def _onnx_session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _single_threaded(pipeline: Any) -> None:
    """Set n_jobs=1 on the forest inside the pipeline: joblib dispatch dominates one-row
    calls."""
    for _, step in getattr(pipeline, "steps", [("model", pipeline)]):
        if hasattr(step, "n_jobs"):
            step.n_jobs = 1
