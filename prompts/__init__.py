"""Prompt templates: sandboxed Jinja, strict about undefined variables, versioned.

Each template is a file `<name>.j2` in this package whose first line is
`{# version: N #}`; the version is stored with every draft made from it. A template renders
to chat messages: its `system` block is the system message (instructions only, never incident
text), its `user` block the user message. Untrusted text (incident evidence,
retrieved postmortems) enters only through the `data` filter, which fences it in a block whose
markers carry a nonce derived from the text itself and removes anything in the text that looks
like a fence, so planted text cannot close the block and speak as the instructions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES = Path(__file__).parent
_VERSION = re.compile(r"\A\{#\s*version:\s*(\d+)\s*#\}")
_FENCE = re.compile(r"<{2,}\s*/?\s*(?:BEGIN|END)?\s*(?:UNTRUSTED|DATA)[^>\n]*>{2,}", re.IGNORECASE)


@dataclass(frozen=True)
class RenderedPrompt:
    """Messages ready for the model, and which template version made them."""

    name: str
    version: int
    system: str
    user: str

    def messages(self) -> list[dict[str, str]]:
        """Chat messages: the system instructions, then the user turn with the data."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]

    @property
    def ref(self) -> str:
        """`name@version`, as stored on drafts."""
        return f"{self.name}@{self.version}"


def data_block(text: object, label: str = "data") -> str:
    """`text` fenced as untrusted data (see the module docstring)."""
    body = _FENCE.sub("[fence removed]", str(text))
    nonce = hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]
    tag = re.sub(r"[^A-Za-z0-9_-]", "_", label).upper()
    return f"<<<BEGIN UNTRUSTED {tag} {nonce}>>>\n{body}\n<<<END UNTRUSTED {tag} {nonce}>>>"


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["data"] = data_block
    return env


def version_of(name: str) -> int:
    """The version a template declares on its first line."""
    source = (TEMPLATES / f"{name}.j2").read_text(encoding="utf-8")
    found = _VERSION.match(source)
    if not found:
        raise ValueError(f"prompt template {name!r} does not start with '{{# version: N #}}'")
    return int(found.group(1))


def render(name: str, **variables: Any) -> RenderedPrompt:
    """Render a template's `system` and `user` blocks; an undefined variable is an error."""
    template = _environment().get_template(f"{name}.j2")
    if not {"system", "user"} <= set(template.blocks):
        raise ValueError(f"prompt template {name!r} needs a 'system' and a 'user' block")
    context = template.new_context(variables)
    system = "".join(template.blocks["system"](context))
    if "<<<BEGIN UNTRUSTED" in system:
        raise ValueError(f"prompt template {name!r} puts data into the system message")
    user = "".join(template.blocks["user"](context))
    return RenderedPrompt(name, version_of(name), system.strip(), user.strip())


def questions(name: str) -> list[str]:
    """The questions (`q_<question>` blocks) a question template offers."""
    template = _environment().get_template(f"{name}.j2")
    return sorted(block[2:] for block in template.blocks if block.startswith("q_"))


def render_question(name: str, question: str, **variables: Any) -> RenderedPrompt:
    """Render a question template: the `system` block, then the user turn made of the shared
    `context` block followed by the `q_<question>` block.

    Every question of a template shares the system message and the start of the user turn
    exactly, so a model that caches prompt prefixes processes the context once.
    """
    template = _environment().get_template(f"{name}.j2")
    block = f"q_{question}"
    if not {"system", "context"} <= set(template.blocks):
        raise ValueError(f"prompt template {name!r} needs a 'system' and a 'context' block")
    if block not in template.blocks:
        raise ValueError(f"prompt template {name!r} has no question {question!r}")
    context = template.new_context(variables)
    system = "".join(template.blocks["system"](context)).strip()
    if "<<<BEGIN UNTRUSTED" in system:
        raise ValueError(f"prompt template {name!r} puts data into the system message")
    shared = "".join(template.blocks["context"](context)).strip()
    asked = "".join(template.blocks[block](context)).strip()
    return RenderedPrompt(name, version_of(name), system, f"{shared}\n\n{asked}")
