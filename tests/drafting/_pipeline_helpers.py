"""Shared helpers of the drafting pipeline tests: the example incident, a drafter, a history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rca.domain import Draft, Incident, Postmortem, SuggestionSection
from rca.drafting import Drafter, DraftingOptions
from rca.llm import LlmClient, LlmConfig, Message
from rca.ports import Retrieved
from rca.redaction import Redactor
from rca.testing import fake_analyst, question_of

EXAMPLE = Path(__file__).parents[2] / "examples" / "incidents"
NOW = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def example(name: str = "inc-2026-01-checkout-db-pool") -> Incident:
    return Incident.model_validate_json((EXAMPLE / f"{name}.json").read_text())


class FixedHistory:
    def __init__(self, found: Retrieved) -> None:
        self.found = found
        self.asked: list[Incident] = []

    def similar(self, incident: Incident, k: int) -> Retrieved:
        self.asked.append(incident)
        return Retrieved(self.found.postmortems[:k], [], self.found.degraded, self.found.notes)


def drafter(history: FixedHistory | None = None, concurrency: int = 1, retries: int = 0) -> Drafter:
    config = LlmConfig(model="fake/analyst", max_retries=retries)
    client = LlmClient(config, Redactor(), sleep=lambda _s: None)
    return Drafter(
        client,
        history,
        Redactor(),
        count=lambda text: len(text.split()),
        options=DraftingOptions(concurrency=concurrency),
        clock=lambda: NOW,
    )


def sections(draft: Draft, section: SuggestionSection) -> list[Any]:
    return [s for s in draft.suggestions if s.section is section]


def replying(answers: dict[str, Callable[[list[Message]], str]]) -> Callable[[list[Message]], str]:
    """The fake analyst, except for the questions given."""

    def reply(messages: list[Message]) -> str:
        handler = answers.get(question_of(messages))
        return handler(messages) if handler else fake_analyst(messages)

    return reply


def past_postmortem() -> Postmortem:
    return Postmortem.model_validate(
        {
            "id": "pm-2025-pool",
            "title": "Checkout connection pool exhausted after a release",
            "summary": "A release shrank the database connection pool; checkout timed out.",
            "root_causes": ["Connection pool size derived from container resources"],
            "contributing_factors": [
                {
                    "text": "Checkout dashboards lacked saturation panels for the load balancer "
                    "health check queue depth",
                    "category": "monitoring",
                }
            ],
            "action_items": [
                {
                    "text": "Alert when the connection pool is exhausted or requests wait for "
                    "a connection",
                    "kind": "detect",
                    "owner": "checkout team",
                    "status": "open",
                },
                {"text": "Write a postmortem template", "kind": "process", "status": "done"},
            ],
        }
    )
