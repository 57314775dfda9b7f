"""The litellm adapter: redaction on every attempt, one bounded retry loop, fallbacks, records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import litellm
import pytest

from rca.llm import (
    Completion,
    LlmClient,
    LlmConfig,
    ModelCallFailed,
    ScriptedModel,
    register_provider,
)
from rca.redaction import PlaceholderTable, Redactor
from tests.support import CANARIES


def _client(model: str = "fake/a", **config: object) -> LlmClient:
    return LlmClient(LlmConfig(model=model, **config), Redactor(), sleep=lambda _s: None)  # type: ignore[arg-type]


def _timeout() -> Exception:
    return litellm.exceptions.Timeout(message="slow", model="a", llm_provider="fake")


def test_a_call_goes_through_litellm_and_is_recorded() -> None:
    fake = ScriptedModel(reply=lambda messages: json.dumps({"echo": messages[-1]["content"]}))
    register_provider("fake", fake)
    done = _client(max_tokens=77).complete(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        json_schema={"type": "object"},
    )
    assert isinstance(done, Completion)
    assert json.loads(done.text) == {"echo": "hello there"}
    assert done.model == "fake/a" and len(done.records) == 1 and done.records[0].ok
    assert done.prompt_tokens == 4 and done.completion_tokens >= 1 and done.cost_usd == 0.0
    assert fake.options[0]["max_tokens"] == 77
    assert fake.options[0]["response_format"]["type"] == "json_schema"


def test_no_canary_reaches_the_provider_on_any_attempt() -> None:
    fake = ScriptedModel(reply=lambda _m: "ok", failures=[_timeout()])
    register_provider("fake", fake)
    payload = "\n".join(line for _, line, _ in CANARIES)
    table = PlaceholderTable()
    done = _client(max_retries=1).complete(
        [{"role": "user", "content": f"logs:\n{payload}"}], table=table
    )
    assert done.text == "ok" and len(fake.received) == 2  # the retry was sent too
    sent = json.dumps(fake.received)
    for name, _, secret in CANARIES:
        assert secret not in sent, name
    assert fake.received[0] == fake.received[1]  # same placeholders on the retry
    assert table.count()["SECRET"] >= len(CANARIES) - 3


def test_bounded_retries_then_fallback() -> None:
    first = ScriptedModel(reply=lambda _m: "never", failures=[_timeout(), _timeout(), _timeout()])
    second = ScriptedModel(reply=lambda _m: "from the fallback")
    register_provider("fake", first)
    register_provider("fake2", second)
    done = _client(fallbacks=("fake2/b",), max_retries=1).complete(
        [{"role": "user", "content": "hi"}]
    )
    assert done.text == "from the fallback" and done.model == "fake2/b"
    assert [(r.model, r.attempt, r.ok) for r in done.records] == [
        ("fake/a", 1, False),
        ("fake/a", 2, False),
        ("fake2/b", 1, True),
    ]
    assert len(first.received) == 2  # 1 + max_retries, never more


def test_a_non_retryable_error_moves_on_at_once_and_total_failure_is_reported() -> None:
    auth = litellm.exceptions.AuthenticationError(message="bad key", llm_provider="fake", model="a")
    register_provider("fake", ScriptedModel(failures=[auth]))
    register_provider("fake2", ScriptedModel(failures=[_timeout(), _timeout()]))
    with pytest.raises(ModelCallFailed, match="every model failed") as caught:
        _client(fallbacks=("fake2/b",), max_retries=1).complete([{"role": "user", "content": "x"}])
    assert [(r.model, r.attempt) for r in caught.value.records] == [
        ("fake/a", 1),
        ("fake2/b", 1),
        ("fake2/b", 2),
    ]
    assert "AuthenticationError" in (caught.value.records[0].error or "")


def test_offline_settings_are_made_before_litellm_loads() -> None:
    import tiktoken

    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    cache = Path(os.environ["TIKTOKEN_CACHE_DIR"])
    assert cache.is_dir() and any(cache.iterdir())
    # The network is blocked in tests: this works only from the bundled files.
    assert len(tiktoken.get_encoding("cl100k_base").encode("connection pool exhausted")) > 2


def test_settings_build_the_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rca.config import Settings
    from rca.llm import client_from_settings

    monkeypatch.setenv("RCA_LLM__MODEL", "fake/a")
    monkeypatch.setenv("RCA_LLM__FALLBACKS", '["local/qwen2.5-coder-0.5b"]')
    monkeypatch.setenv("RCA_LLM__MAX_RETRIES", "0")
    monkeypatch.setenv("RCA_REDACTION__IP_ADDRESSES", "true")
    settings = Settings(data_dir=tmp_path)
    client = client_from_settings(settings)
    assert client.config.model == "fake/a"
    assert client.config.fallbacks == ("local/qwen2.5-coder-0.5b",)
    assert client.config.max_retries == 0
    fake = ScriptedModel(reply=lambda messages: messages[0]["content"])
    register_provider("fake", fake)
    done = client.complete([{"role": "user", "content": "upstream 10.1.2.3 refused"}])
    assert done.text == "upstream IP_1 refused"  # IPs redacted, as configured


@pytest.mark.parametrize(
    ("raised", "noted"),
    [
        (  # what litellm makes of a provider that raises: its own traceback in the message
            RuntimeError("connection refused"),
            "APIConnectionError: connection refused",
        ),
        (
            RuntimeError('model file /srv/rca/models/qwen.gguf missing\n  File "/srv/x.py"'),
            "APIConnectionError: model file …/qwen.gguf missing",
        ),
        (
            litellm.exceptions.AuthenticationError(
                message='bad key\nTraceback (most recent call last):\n  File "/a/b.py", line 1',
                llm_provider="fake",
                model="a",
            ),
            "AuthenticationError: bad key",
        ),
    ],
)
def test_a_failed_call_is_recorded_in_one_readable_line_and_logged_in_full(
    raised: Exception, noted: str, caplog: pytest.LogCaptureFixture
) -> None:
    register_provider("fake", ScriptedModel(failures=[raised]))
    with caplog.at_level("WARNING", logger="rca.llm"), pytest.raises(ModelCallFailed) as caught:
        _client(max_retries=0).complete([{"role": "user", "content": "x"}])

    assert [r.error for r in caught.value.records] == [noted]
    assert str(caught.value) == f"every model failed (fake/a); last error: {noted}"
    [logged] = caplog.records
    assert logged.getMessage() == f"fake/a, attempt 1, failed: {noted}"
    assert logged.exc_info is not None and logged.exc_info[1] is not None
    assert "Traceback" in caplog.text and str(raised).splitlines()[0] in caplog.text


def test_a_split_asks_the_writer_for_prose_and_the_chooser_for_the_rest() -> None:
    chooser = ScriptedModel(reply=lambda _m: "chosen")
    writer = ScriptedModel(reply=lambda _m: "written")
    register_provider("fake", chooser)
    register_provider("fake2", writer)
    client = _client(writer="fake2/w", fallbacks=("fake/a",))
    assert client.config.name == "fake/a+fake2/w"
    hi = [{"role": "user", "content": "hi"}]
    assert client.complete(hi).model == "fake/a"  # type: ignore[list-item]
    wrote = client.complete(hi, writing=True)  # type: ignore[arg-type]
    assert (wrote.text, wrote.model) == ("written", "fake2/w")
    assert len(chooser.received) == 1 and len(writer.received) == 1


def test_a_failing_writer_hands_the_prose_to_the_chooser() -> None:
    register_provider("fake", ScriptedModel(reply=lambda _m: "chosen"))
    register_provider("fake2", ScriptedModel(failures=[_timeout(), _timeout()]))
    done = _client(writer="fake2/w", max_retries=1).complete(
        [{"role": "user", "content": "hi"}], writing=True
    )
    assert done.text == "chosen"
    assert [(r.model, r.ok) for r in done.records] == [
        ("fake2/w", False),
        ("fake2/w", False),
        ("fake/a", True),
    ]


@pytest.mark.parametrize("model", ["a+", "+b", "a+b+c", " + "])
def test_a_malformed_split_is_a_configuration_error(model: str, tmp_path: Path) -> None:
    from rca.config import LlmSettings, Settings
    from rca.errors import ConfigurationError
    from rca.llm import client_from_settings

    settings = Settings(data_dir=tmp_path, llm=LlmSettings(model=model))
    with pytest.raises(ConfigurationError, match=r"CHOOSER\+WRITER"):
        client_from_settings(settings)


def test_settings_build_a_split(tmp_path: Path) -> None:
    from rca.config import LlmSettings, Settings
    from rca.llm import client_from_settings, is_embedded

    model = "fake/a+local/qwen2.5-coder-1.5b"
    client = client_from_settings(Settings(data_dir=tmp_path, llm=LlmSettings(model=model)))
    assert (client.config.model, client.config.writer) == ("fake/a", "local/qwen2.5-coder-1.5b")
    assert client.local is not None and client.is_local  # the writer runs in-process
    assert is_embedded(model) and not is_embedded("fake/a+fake2/b")
