"""The providers rca registers with litellm, and the registry itself.

A provider makes model strings `<name>/<model>` reach a handler in this process:

- `LocalModel` (`local/...`): the embedded model, llama.cpp running GGUF weights verified by
  `rca.llm.weights`;
- `ScriptedModel` (`fake/...`): a scripted fake for tests and pipeline checks, which keeps
  every payload it receives;
- `register_provider`: installs a handler under a name, replacing an earlier one.

`Message` is the chat message as litellm takes it and the providers receive it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import litellm  # rca/__init__.py has made it offline-safe before this import
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import ModelResponse, Usage
from litellm.utils import custom_llm_setup

from rca.errors import ConfigurationError
from rca.llm import weights

Message = dict[str, str]

_providers_lock = threading.Lock()


def register_provider(name: str, handler: CustomLLM) -> None:
    """Make `name/<model>` model strings reach `handler` (replacing an earlier one)."""
    with _providers_lock:
        others = [p for p in litellm.custom_provider_map if p.get("provider") != name]
        litellm.custom_provider_map = [*others, {"provider": name, "custom_handler": handler}]
        custom_llm_setup()  # type: ignore[no-untyped-call]


# --- the embedded model: llama.cpp in-process ------------------------------------------------


class LocalModel(CustomLLM):
    """`local/<name>`: a known GGUF model (see `rca.llm.weights`) or `local/<path>.gguf`, run by
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
        spec = weights.spec_for(name)
        path = weights.model_path(self.data_dir, spec)
        weights.verify(path, spec)
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
