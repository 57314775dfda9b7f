"""The embedded model, for real: Qwen2.5-Coder-0.5B through litellm's custom-provider path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rca.errors import ConfigurationError
from rca.llm import LlmClient, LlmConfig, LocalModel, ModelCallFailed, weights
from rca.redaction import Redactor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModel]:
    data_dir = tmp_path_factory.mktemp("model-data")
    # Assembled from the installed part packages and verified, as `rca model pull` does.
    weights.pull(weights.spec_for(weights.DEFAULT_MODEL), data_dir)
    model = LocalModel(data_dir, n_ctx=2048)
    yield model
    model.close()


def test_a_schema_constrained_answer_from_the_local_model(local: LocalModel) -> None:
    schema = {
        "type": "object",
        "properties": {
            "trigger": {"type": "string", "enum": ["log-1", "log-2", "alert-1"]},
            "why": {"type": "string"},
        },
        "required": ["trigger", "why"],
    }
    client = LlmClient(
        LlmConfig(model="local/qwen2.5-coder-0.5b", max_tokens=120), Redactor(), local
    )
    done = client.complete(
        [
            {"role": "system", "content": "You analyse incidents. Answer in JSON."},
            {
                "role": "user",
                "content": "[log-1] 14:02 deploy of checkout-api set the DB pool max to 5.\n"
                "[alert-1] 14:05 checkout p99 latency above 8 s.\n"
                "[log-2] 14:05 timeout waiting for a database connection.\n"
                "Which evidence id is the change that triggered the incident?",
            },
        ],
        json_schema=schema,
    )
    answer = json.loads(done.text)
    assert answer["trigger"] in {"log-1", "log-2", "alert-1"} and answer["why"]
    record = done.records[0]
    assert record.ok and record.prompt_tokens > 50 and 0 < record.completion_tokens <= 120
    assert record.cost_usd == 0.0
    assert local.count_tokens("qwen2.5-coder-0.5b", "connection pool exhausted") > 2


def test_a_missing_model_file_is_a_clear_failure(local: LocalModel) -> None:
    with pytest.raises(ConfigurationError, match="no GGUF model file"):
        local.path_of("/nonexistent/model.gguf")
    client = LlmClient(LlmConfig(model="local//nonexistent/model.gguf"), Redactor(), local)
    with pytest.raises(ModelCallFailed, match="no GGUF model file"):
        client.complete([{"role": "user", "content": "hi"}])


def test_a_tampered_model_is_refused(tmp_path: Path) -> None:
    spec = weights.spec_for(weights.DEFAULT_MODEL)
    path = weights.model_path(tmp_path, spec)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF not really")
    with pytest.raises(ConfigurationError, match="bytes, expected"):
        LocalModel(tmp_path).path_of(spec.name)
