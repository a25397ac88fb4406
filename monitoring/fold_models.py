"""The models an evaluation fold trained, loaded as the service loads models.

`models.loading.load_logged_set` (logged, unregistered runs) leaves the signal model's
out-of-distribution detector out, where `load_model_set` (registered versions, what the
service serves) reads it; a policy arm built on it would never refuse a signal as out of
distribution. Until `load_logged_set` loads the detector itself, `logged_model_set`
attaches it from the logged model's files (and then changes nothing)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlparse

from models.loading import ModelSet, load_logged_set
from models.ood import OutOfDistributionDetector
from models.schema import OOD_FILE, SIGNAL_QUALITY
from models.tracker import RunReader


def logged_model_set(tracking_uri: str, runs: dict[str, str]) -> ModelSet:
    """The four models of `runs` (name → run id) with the signal model's detector."""
    model_set = load_logged_set(tracking_uri, runs)
    location = RunReader(tracking_uri).logged_model_location(runs[SIGNAL_QUALITY])
    path = Path(unquote(urlparse(location).path)) / "extra_files" / OOD_FILE
    if getattr(model_set, "_ood", None) is not None or not path.is_file():
        return model_set
    detector = OutOfDistributionDetector.from_dict(json.loads(path.read_text()))
    names = [*model_set.feature_names,
             *(n for n in detector.feature_names if n not in model_set.feature_names)]
    return replace(model_set, feature_names=names, _ood=detector)
