"""The model service fuzzed from its own OpenAPI document (`/docs.json`): every endpoint,
every schemathesis check, with the token: no 5xx, no answer outside the schema, malformed
bodies and content types refused with a 4xx."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.fuzz_support import fuzz
from tests.integration.serving.harness import MODEL_NAMES, TOKEN, Server, serve_versions

pytestmark = pytest.mark.integration


def test_fuzzing_every_endpoint_finds_no_server_error_and_no_schema_violation(
    serving_server: Server, tmp_path: Path
) -> None:
    serve_versions(serving_server, dict.fromkeys(MODEL_NAMES, "1"), dict.fromkeys(MODEL_NAMES, "2"))
    report = fuzz(f"{serving_server.url}/docs.json", TOKEN, tmp_path)
    assert "POST /decide" in report or "10 selected" in report
    status = httpx.get(f"{serving_server.url}/models", timeout=30).json()
    assert status["champion"] is not None  # the service still serves after the run
