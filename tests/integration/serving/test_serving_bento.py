"""`bentoml build` packages the service from bentofile.yaml (into a temporary BentoML home)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.serving.harness import PROJECT_ROOT

pytestmark = pytest.mark.integration


def test_bentofile_builds_a_bento(tmp_path: Path) -> None:
    bentofile = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())
    assert bentofile["service"] == "pipelines.serve:TradewindService"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEWIND_", "ALPACA_"))}
    env.update({"BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true",
                "TRADEWIND_PATHS__MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    built = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", ".", "--output", "tag"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    bentos = list((tmp_path / "bentoml" / "bentos" / "tradewind").glob("*/src/serving/service.py"))
    assert len(bentos) == 1
    sources = bentos[0].parents[1]
    assert (sources / "pipelines" / "serve.py").exists()
    assert (sources / "models" / "loading.py").exists()
    assert not (sources / "tests").exists()
