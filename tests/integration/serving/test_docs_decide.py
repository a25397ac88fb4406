"""The `/decide` example of docs/serving.md, extracted from the page and run as written
with curl against a real `bentoml serve` (only the port differs): it answers 200 with a
decision (issue 16: the example used to answer 422)."""

from __future__ import annotations

import json

from tests.docs_blocks import run_block, runnable
from tests.integration.serving.harness import MODEL_NAMES, TOKEN, Server, serve_versions


def test_the_decide_example_answers_with_a_decision(serving_server: Server) -> None:
    serve_versions(serving_server, champion=dict.fromkeys(MODEL_NAMES, "1"), challenger=None)
    block = runnable("decide")
    out = run_block(
        block,
        cwd=serving_server.workdir,
        ports={3000: serving_server.port},
        env={"TRADEWIND_API_TOKEN": TOKEN},
        timeout=60,
    )
    answer = json.loads(out)
    assert "detail" not in answer, answer
    assert answer["decision_id"]
    assert answer["variant"] == "champion"
    assert 0.0 <= answer["win_probability"] <= 1.0
    assert answer["model_versions"]
