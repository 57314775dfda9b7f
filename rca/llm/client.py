"""Model calls through litellm: every model call of rca goes through `LlmClient`.

What it guarantees, whatever the model (a hosted provider, an OpenAI-compatible server, or a
provider registered with litellm by `rca.llm.providers`, such as the scripted `fake/...` model):

- nothing unredacted leaves: every message is redacted (with the caller's placeholder table,
  so placeholders stay consistent within an incident) immediately before *each* attempt;
- one bounded loop of attempts -- the model, then each fallback, each tried at most
  `1 + max_retries` times on errors worth retrying (timeouts, 429, 5xx, answers that are not
  JSON, cut off or without a choice); litellm's and the OpenAI SDK's own retries are off, so
  retries never nest: at most `(1 + max_retries) * (1 + len(fallbacks))` requests per call;
- between retries of one model, the wait the provider asked for (Retry-After, Retry-After-ms)
  or else a doubling backoff, never more than `max_wait_s`: a provider asking for longer is
  not retried, the next model is tried at once;
- a timeout and `max_tokens` on every call;
- a `CallRecord` per call: model used, attempts, tokens, cost, latency, outcome.

Importing litellm must not touch the network: `rca/__init__.py` sets
`LITELLM_LOCAL_MODEL_COST_MAP` (the bundled price list) and points `TIKTOKEN_CACHE_DIR` at the
encodings litellm ships before any of this is imported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import litellm  # rca/__init__.py has made it offline-safe before this import
from pydantic import BaseModel, ConfigDict

from rca.config import Settings
from rca.errors import ConfigurationError, RcaError
from rca.llm.provider_errors import error_line, retry_after_s
from rca.llm.providers import LocalModel, Message, register_provider
from rca.redaction import PlaceholderTable, RedactionFailed, Redactor

litellm.suppress_debug_info = True
litellm.telemetry = False
log = logging.getLogger("rca.llm")


class ModelCallFailed(RcaError):
    """Every attempt at every model failed; the records say why."""

    def __init__(self, message: str, records: list[CallRecord]) -> None:
        self.records = records
        super().__init__(message)


class UnusableAnswer(Exception):
    """A provider answered 200 with nothing to use (no choice, no text): retried like a
    server error."""


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
    """The model that answers (for a split, the one that chooses)."""
    fallbacks: tuple[str, ...] = ()
    api_base: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 1
    backoff_s: float = 2.0
    """Wait before the first retry of a model without Retry-After; doubles with each retry."""
    max_wait_s: float = 30.0
    """Longest wait before a retry; a longer Retry-After moves on to the next model."""
    max_tokens: int = 1024
    temperature: float = 0.0
    writer: str | None = None
    """For a split (`CHOOSER+WRITER`): the model asked to write; `model` when it fails."""

    @property
    def name(self) -> str:
        """The model string as configured: `model`, or `model+writer` for a split."""
        return f"{self.model}+{self.writer}" if self.writer else self.model


_RETRYABLE = (
    litellm.exceptions.Timeout,
    litellm.exceptions.APIConnectionError,
    litellm.exceptions.RateLimitError,
    litellm.exceptions.ServiceUnavailableError,
    litellm.exceptions.InternalServerError,  # litellm's mapping of bodies not JSON or cut off
    UnusableAnswer,
)


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
        from rca.llm.tokens import tiktoken_counter

        return tiktoken_counter()

    @property
    def is_local(self) -> bool:
        """True when the main model runs in this process (calls are then serialised)."""
        return any(is_embedded(m) for m in (self.config.model, self.config.writer or ""))

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
        writing: bool = False,
    ) -> Completion:
        """The first successful answer of the model or, failing that, of its fallbacks.
        `writing`: a question whose answer is prose; a split's writer is asked first."""
        table = table if table is not None else PlaceholderTable()
        records: list[CallRecord] = []
        limit = max_tokens or self.config.max_tokens
        first = [self.config.writer] if writing and self.config.writer else []
        for model in dict.fromkeys([*first, self.config.model, *self.config.fallbacks]):
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
                        num_retries=0,  # litellm's retries
                        max_retries=0,  # the OpenAI SDK's (some litellm versions give it 2)
                        api_base=self.config.api_base,
                        **_response_format(json_schema),
                    )
                    record, text = _succeeded(model, attempt, started, response)
                except _RETRYABLE as err:
                    asked = retry_after_s(err)
                    too_long = ""
                    if asked is not None and asked > self.config.max_wait_s:
                        too_long = (
                            f" (Retry-After {asked:g} s; rca waits {self.config.max_wait_s:g})"
                        )
                    records.append(_failed(model, attempt, started, err, too_long))
                    if too_long or attempt > self.config.max_retries:
                        break  # the next model, at once
                    self._sleep(self._wait_s(attempt, asked))
                    continue
                except litellm.exceptions.BadRequestError as err:
                    records.append(_failed(model, attempt, started, err))
                    break  # this model cannot take this request; try the next one
                except Exception as err:  # auth, not found, provider bugs: next model
                    records.append(_failed(model, attempt, started, err))
                    break
                records.append(record)
                return Completion(text=text, model=model, records=records)
        tried = ", ".join(dict.fromkeys(r.model for r in records))
        last = records[-1].error if records else "no model configured"
        raise ModelCallFailed(f"every model failed ({tried}); last error: {last}", records)

    def _wait_s(self, attempt: int, asked: float | None) -> float:
        """The pause before retry `attempt + 1`: what the provider asked for, else the
        doubling backoff; at most `max_wait_s`."""
        backoff = self.config.backoff_s * 2.0 ** (attempt - 1)
        return min(asked if asked is not None else backoff, self.config.max_wait_s)

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


def _failed(model: str, attempt: int, started: float, err: Exception, why: str = "") -> CallRecord:
    """The record of a failed attempt, its error in one line; the whole error is logged."""
    error = error_line(err, why)
    log.warning("%s, attempt %d, failed: %s", model, attempt, error, exc_info=err)
    return CallRecord(
        model=model,
        attempt=attempt,
        ok=False,
        latency_s=time.perf_counter() - started,
        error=error,
    )


def _succeeded(model: str, attempt: int, started: float, response: Any) -> tuple[CallRecord, str]:
    """The record and text of an answer; `UnusableAnswer` when it has no choice or no text."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise UnusableAnswer("the provider answered without a choice")
    text = getattr(getattr(choices[0], "message", None), "content", None)
    if not isinstance(text, str) or not text.strip():
        raise UnusableAnswer("the provider answered without text")
    usage = getattr(response, "usage", None)
    try:
        cost = float(litellm.completion_cost(completion_response=response))
    except Exception:  # local and unknown models have no price
        cost = 0.0
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


def client_from_settings(settings: Settings) -> LlmClient:
    """The client the settings describe; the embedded provider is set up when a `local/`
    model is among the model and its fallbacks."""
    llm = settings.llm
    chooser, writer = split_model(llm.model)
    config = LlmConfig(
        model=chooser,
        writer=writer,
        fallbacks=tuple(llm.fallbacks),
        api_base=llm.api_base,
        timeout_s=llm.timeout_s,
        max_retries=llm.max_retries,
        backoff_s=llm.backoff_s,
        max_wait_s=llm.max_wait_s,
        max_tokens=llm.max_tokens,
        temperature=llm.temperature,
    )
    local = None
    if any(is_embedded(m) for m in (chooser, writer or "", *llm.fallbacks)):
        local = LocalModel(settings.data_dir, n_ctx=llm.context_tokens, threads=llm.threads)
    return LlmClient(config, Redactor(ip_addresses=settings.redaction.ip_addresses), local)


def split_model(model: str) -> tuple[str, str | None]:
    """A model string's chooser and writer: `A+B` is a split, anything else one model."""
    chooser, plus, writer = model.partition("+")
    if not plus:
        return model, None
    if not chooser.strip() or not writer.strip() or "+" in writer:
        raise ConfigurationError(
            f"model {model!r}: a split is two model strings joined by one '+' (CHOOSER+WRITER)"
        )
    return chooser.strip(), writer.strip()


def is_embedded(model: str) -> bool:
    """Whether `model` (or either half of a split) runs in this process."""
    return any(part.strip().startswith("local/") for part in model.split("+"))
