"""The one module that talks to litellm: every model call of rca goes through `LlmClient`.

What it guarantees, whatever the model (a hosted provider, an OpenAI-compatible server, or a
provider registered here such as the scripted `fake/...` model):

- nothing unredacted leaves: every message is redacted (with the caller's placeholder table,
  so placeholders stay consistent within an incident) immediately before *each* attempt;
- one bounded loop of attempts -- the model, then each fallback, each tried at most
  `1 + max_retries` times on errors worth retrying; litellm's own retries are off, so retries
  never nest;
- a timeout and `max_tokens` on every call;
- a `CallRecord` per call: model used, attempts, tokens, cost, latency, outcome.

Importing litellm must not touch the network: `rca/__init__.py` sets
`LITELLM_LOCAL_MODEL_COST_MAP` (the bundled price list) and points `TIKTOKEN_CACHE_DIR` at the
encodings litellm ships before any of this is imported.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import litellm  # rca/__init__.py has made it offline-safe before this import
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import ModelResponse, Usage
from litellm.utils import custom_llm_setup
from pydantic import BaseModel, ConfigDict

from rca import local_model
from rca.config import Settings
from rca.errors import ConfigurationError, RcaError
from rca.redaction import PlaceholderTable, RedactionFailed, Redactor

litellm.suppress_debug_info = True
litellm.telemetry = False

Message = dict[str, str]


class ModelCallFailed(RcaError):
    """Every attempt at every model failed; the records say why."""

    def __init__(self, message: str, records: list[CallRecord]) -> None:
        self.records = records
        super().__init__(message)


class CallRecord(BaseModel):
    """One attempt at one model."""

    model_config = ConfigDict(frozen=True)

    model: str
    attempt: int
    ok: bool
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class Completion:
    """The model's text and what it took to get it."""

    text: str
    model: str
    records: list[CallRecord]

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens over every attempt."""
        return sum(r.prompt_tokens for r in self.records)

    @property
    def completion_tokens(self) -> int:
        """Completion tokens over every attempt."""
        return sum(r.completion_tokens for r in self.records)

    @property
    def cost_usd(self) -> float:
        """Cost over every attempt (0 for local and unknown models)."""
        return sum(r.cost_usd for r in self.records)


@dataclass(frozen=True)
class LlmConfig:
    """How to call models (built from `rca.config.LlmSettings`)."""

    model: str
    fallbacks: tuple[str, ...] = ()
    api_base: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 1
    max_tokens: int = 1024
    temperature: float = 0.0


_RETRYABLE = (
    litellm.exceptions.Timeout,
    litellm.exceptions.APIConnectionError,
    litellm.exceptions.RateLimitError,
    litellm.exceptions.ServiceUnavailableError,
    litellm.exceptions.InternalServerError,
)

_providers_lock = threading.Lock()


def register_provider(name: str, handler: CustomLLM) -> None:
    """Make `name/<model>` model strings reach `handler` (replacing an earlier one)."""
    with _providers_lock:
        others = [p for p in litellm.custom_provider_map if p.get("provider") != name]
        litellm.custom_provider_map = [*others, {"provider": name, "custom_handler": handler}]
        custom_llm_setup()  # type: ignore[no-untyped-call]


class LlmClient:
    """Calls models through litellm with redaction, timeouts, bounded retries and fallbacks."""

    def __init__(
        self,
        config: LlmConfig,
        redactor: Redactor,
        local: LocalModel | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.redactor = redactor
        self.local = local
        self._sleep = sleep
        if local is not None:
            register_provider("local", local)

    def token_counter(self) -> Callable[[str], int]:
        """Counts tokens as the configured model does: the embedded model with its own
        tokenizer, hosted models approximately with tiktoken's cl100k_base (offline)."""
        model = self.config.model
        if self.local is not None and model.startswith("local/"):
            local, name = self.local, model.split("/", 1)[1]
            return lambda text: local.count_tokens(name, text)
        from rca.context import tiktoken_counter

        return tiktoken_counter()

    @property
    def is_local(self) -> bool:
        """True when the main model runs in this process (calls are then serialised)."""
        return self.config.model.startswith("local/")

    def close(self) -> None:
        """Free the embedded model, if one was loaded."""
        if self.local is not None:
            self.local.close()

    def complete(
        self,
        messages: Sequence[Message],
        *,
        table: PlaceholderTable | None = None,
        max_tokens: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        """The first successful answer of the model or, failing that, of its fallbacks."""
        table = table if table is not None else PlaceholderTable()
        records: list[CallRecord] = []
        limit = max_tokens or self.config.max_tokens
        for model in (self.config.model, *self.config.fallbacks):
            for attempt in range(1, self.config.max_retries + 2):
                # Redacted afresh for every attempt: nothing unredacted can ride on a retry.
                outbound = self._redacted(messages, table)
                started = time.perf_counter()
                try:
                    response = litellm.completion(
                        model=model,
                        messages=outbound,
                        max_tokens=limit,
                        temperature=self.config.temperature,
                        timeout=self.config.timeout_s,
                        num_retries=0,
                        api_base=self.config.api_base,
                        **_response_format(json_schema),
                    )
                except _RETRYABLE as err:
                    records.append(_failed(model, attempt, started, err))
                    if attempt <= self.config.max_retries:
                        self._sleep(min(2.0**attempt, 10.0))
                    continue
                except litellm.exceptions.BadRequestError as err:
                    records.append(_failed(model, attempt, started, err))
                    break  # this model cannot take this request; try the next one
                except Exception as err:  # auth, not found, provider bugs: next model
                    records.append(_failed(model, attempt, started, err))
                    break
                record, text = _succeeded(model, attempt, started, response)
                records.append(record)
                return Completion(text=text, model=model, records=records)
        tried = ", ".join(dict.fromkeys(r.model for r in records))
        last = records[-1].error if records else "no model configured"
        raise ModelCallFailed(f"every model failed ({tried}); last error: {last}", records)

    def _redacted(self, messages: Sequence[Message], table: PlaceholderTable) -> list[Message]:
        try:
            return [
                {**message, "content": self.redactor.redact(message["content"], table)}
                for message in messages
            ]
        except RedactionFailed:
            raise
        except (KeyError, TypeError) as err:
            raise RedactionFailed(f"a message has no text content: {err}") from None


def _response_format(json_schema: dict[str, Any] | None) -> dict[str, Any]:
    if json_schema is None:
        return {}
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": json_schema, "strict": True},
        }
    }


def _failed(model: str, attempt: int, started: float, err: Exception) -> CallRecord:
    return CallRecord(
        model=model,
        attempt=attempt,
        ok=False,
        latency_s=time.perf_counter() - started,
        error=f"{type(err).__name__}: {str(err)[:300]}",
    )


def _succeeded(model: str, attempt: int, started: float, response: Any) -> tuple[CallRecord, str]:
    usage = getattr(response, "usage", None)
    try:
        cost = float(litellm.completion_cost(completion_response=response))
    except Exception:  # local and unknown models have no price
        cost = 0.0
    text = response.choices[0].message.content or ""
    record = CallRecord(
        model=model,
        attempt=attempt,
        ok=True,
        latency_s=time.perf_counter() - started,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost_usd=cost,
    )
    return record, text


# --- the embedded model: llama.cpp in-process ------------------------------------------------


class LocalModel(CustomLLM):
    """`local/<name>`: a known GGUF model (see `rca.local_model`) or `local/<path>.gguf`, run by
    llama.cpp in this process, with JSON-schema-constrained output when a schema is given.

    Models load once and stay loaded; calls to one model are serialised (llama.cpp contexts are
    not thread-safe). Before a known model is loaded its pinned SHA-256 is checked.
    """

    def __init__(self, data_dir: Path, n_ctx: int = 8192, threads: int | None = None) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.n_ctx = n_ctx
        self.threads = threads or max(1, os.cpu_count() or 1)
        self._loaded: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def path_of(self, name: str) -> Path:
        """The GGUF file for `name`, verified when it is a known model."""
        if name.endswith(".gguf"):
            path = Path(name).expanduser()
            if not path.is_file():
                raise ConfigurationError(f"no GGUF model file at {path}")
            return path
        spec = local_model.spec_for(name)
        path = local_model.model_path(self.data_dir, spec)
        local_model.verify(path, spec)
        return path

    def llama(self, name: str) -> tuple[Any, threading.Lock]:
        """The loaded model and the lock that serialises its use."""
        with self._lock:
            if name not in self._loaded:
                from llama_cpp import Llama

                self._loaded[name] = Llama(
                    model_path=str(self.path_of(name)),
                    n_ctx=self.n_ctx,
                    n_threads=self.threads,
                    verbose=False,
                )
                self._locks[name] = threading.Lock()
            return self._loaded[name], self._locks[name]

    def completion(  # litellm passes many more arguments; these are the ones used
        self, model: str, messages: list[Message], *_args: Any, **kwargs: Any
    ) -> Any:
        options: dict[str, Any] = dict(kwargs.get("optional_params") or {})
        name = model.split("/", 1)[1] if model.startswith("local/") else model
        llama, lock = self.llama(name)
        request: dict[str, Any] = {
            "messages": messages,
            "max_tokens": int(options.get("max_tokens") or 512),
            "temperature": float(options.get("temperature") or 0.0),
            "seed": 0,
        }
        response_format = options.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            schema = response_format.get("json_schema", {}).get("schema", {})
            request["response_format"] = {"type": "json_object", "schema": schema}
        with lock:
            raw = llama.create_chat_completion(**request)
        choice = raw["choices"][0]
        response = ModelResponse(
            choices=[
                {
                    "message": {"role": "assistant", "content": choice["message"]["content"]},
                    "finish_reason": choice.get("finish_reason") or "stop",
                    "index": 0,
                }
            ],
            model=model,
        )
        usage = raw.get("usage") or {}
        response.usage = Usage(  # type: ignore[attr-defined]
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            total_tokens=int(usage.get("total_tokens", 0)),
        )
        return response

    def close(self) -> None:
        """Free every loaded model (llama.cpp frees badly at interpreter exit)."""
        with self._lock:
            loaded, self._loaded = self._loaded, {}
        for llama in loaded.values():
            llama.close()

    def count_tokens(self, name: str, text: str) -> int:
        """Tokens of `text` in the model's own tokenizer."""
        llama, _lock = self.llama(name)
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False))


# --- a scripted model, for tests and pipeline checks ----------------------------------------


@dataclass
class ScriptedModel(CustomLLM):
    """`fake/<anything>`: answers with `reply(messages)`; `failures` makes the first calls
    raise; every payload received is kept in `received` (so tests can look for leaks)."""

    reply: Callable[[list[Message]], str] = lambda _messages: "{}"
    failures: list[Exception] = field(default_factory=list)
    received: list[list[Message]] = field(default_factory=list)
    options: list[dict[str, Any]] = field(default_factory=list)
    """The optional parameters (max_tokens, response_format, ...) of each call."""

    def __post_init__(self) -> None:
        super().__init__()

    @staticmethod
    def timeout() -> Exception:
        """A provider timeout (retried by `LlmClient`), to put in `failures`."""
        return litellm.exceptions.Timeout(message="timed out", model="fake", llm_provider="fake")

    def completion(  # litellm passes many more arguments; none matter here
        self, model: str, messages: list[Message], *_args: Any, **_kwargs: Any
    ) -> Any:
        self.received.append([dict(m) for m in messages])
        self.options.append(dict(_kwargs.get("optional_params") or {}))
        if self.failures:
            raise self.failures.pop(0)
        text = self.reply(messages)
        response = ModelResponse(
            choices=[
                {
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "index": 0,
                }
            ],
            model=model,
        )
        prompt = sum(len(m.get("content", "").split()) for m in messages)
        response.usage = Usage(  # type: ignore[attr-defined]
            prompt_tokens=prompt,
            completion_tokens=len(text.split()),
            total_tokens=prompt + len(text.split()),
        )
        return response


def client_from_settings(settings: Settings) -> LlmClient:
    """The client the settings describe; the embedded provider is set up when a `local/`
    model is among the model and its fallbacks."""
    llm = settings.llm
    config = LlmConfig(
        model=llm.model,
        fallbacks=tuple(llm.fallbacks),
        api_base=llm.api_base,
        timeout_s=llm.timeout_s,
        max_retries=llm.max_retries,
        max_tokens=llm.max_tokens,
        temperature=llm.temperature,
    )
    local = None
    if any(m.startswith("local/") for m in (llm.model, *llm.fallbacks)):
        local = LocalModel(settings.data_dir, n_ctx=llm.context_tokens, threads=llm.threads)
    return LlmClient(config, Redactor(ip_addresses=settings.redaction.ip_addresses), local)
