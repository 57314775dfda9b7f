"""What the model fills in, one small answer per question: the output schemas of drafting.

These are *not* the stored types: the pipeline (`rca.drafting`) checks every answer and turns
it into `Suggestion`s, setting ids, confidence, origin and review state itself. Each answer is
small on purpose, because small local models fail at one big schema. The JSON schema sent to
the model is the answer model's schema with the allowed evidence ids (and trigger ids) filled
in as enums, so a grammar-constrained model cannot cite an id that does not exist; hosted
models get the same schema, and validation checks their citations anyway.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    """Base of every answer: unknown keys are an error (a schema violation to re-ask about)."""

    model_config = ConfigDict(extra="forbid")


class Cited(Answer):
    """A statement and the evidence ids it rests on."""

    text: str = Field(description="One plain sentence, no markdown, no links.")
    evidence_ids: list[str] = Field(description="Ids of the evidence that supports it.")


class TriggerAnswer(Answer):
    """Which candidate change set the incident off."""

    trigger: str = Field(description='The id of the chosen candidate trigger, or "none".')
    explanation: str = Field(description="One sentence on why, citing evidence.")
    evidence_ids: list[str] = Field(description="Ids of the evidence that links it to impact.")


class SummaryAnswer(Answer):
    """The executive summary."""

    summary: str = Field(description="Two to four plain sentences.")
    evidence_ids: list[str] = Field(description="Ids of the evidence it rests on.")


class ImpactAnswer(Answer):
    """The impact."""

    impact: str = Field(description="One or two plain sentences.")
    evidence_ids: list[str] = Field(description="Ids of the evidence it rests on.")


class RootCauseItem(Cited):
    """A root cause: one of the candidate conditions, in the model's words (or, when the model
    only chooses, without `text` and `evidence_ids`: the condition's own line is quoted)."""

    condition: str = Field(description="The id of the chosen candidate condition.")
    text: str = Field("", description="One plain sentence, no markdown, no links.")
    evidence_ids: list[str] = Field(
        default_factory=list, description="Ids of the evidence that supports it."
    )


class RootCausesAnswer(Answer):
    """Systemic root causes, chosen among the candidate conditions code found."""

    root_causes: list[RootCauseItem] = Field(
        description="One to three; empty if no candidate condition explains the impact."
    )


class ChainStep(Cited):
    """One step between the trigger and the impact: a candidate step, in the model's words."""

    step: str = Field(description="The id of the chosen candidate step.")
    kind: Literal["cause", "symptom"] = Field(description="A mechanism, or what was observed.")
    text: str = Field("", description="One plain sentence, no markdown, no links.")
    evidence_ids: list[str] = Field(
        default_factory=list, description="Ids of the evidence that supports it."
    )


class ChainAnswer(Answer):
    """How the failure spread, in order."""

    steps: list[ChainStep] = Field(description="Two to four steps, in order.")


class FactorAnswerItem(Answer):
    """A contributing factor: one of the candidate factors, in the model's words (or, when the
    model only chooses, without `text`: the candidate's own text is used)."""

    factor: str = Field(description="The id of the chosen candidate factor.")
    text: str = Field("", description="One plain sentence about a condition, no markdown.")


class FactorsAnswer(Answer):
    """Contributing factors, chosen among the candidates code assembled."""

    factors: list[FactorAnswerItem] = Field(description="Two to four, the most important first.")


class ActionAnswerItem(Answer):
    """An action item: one of the candidate actions, in the model's words (or the candidate's
    own text when the model only chooses). Kind, priority and owner come with the candidate."""

    action: str = Field(description="The id of the chosen candidate action.")
    text: str = Field("", description="What to do, specific and checkable, one sentence.")


class ActionsAnswer(Answer):
    """Action items, chosen among the candidates code assembled."""

    actions: list[ActionAnswerItem] = Field(description="Three to five, the most important first.")


class LessonsAnswer(Answer):
    """Lessons learned under the three usual headings."""

    went_well: list[Cited] = Field(description="At most two.")
    went_wrong: list[Cited] = Field(description="At most two.")
    lucky: list[Cited] = Field(description="At most two.")


MAX_CHARS: dict[str, int] = {
    "text": 240,
    "explanation": 240,
    "summary": 600,
    "impact": 300,
    "owner": 40,
}
"""Longest string the schema allows per field: small models otherwise ramble until the token
limit and leave the JSON unterminated."""
STEP_CHARS = 150
"""Longest chain step (about 20 words): chain answers list up to four, and every character
generated costs the embedded model time."""

QuestionName = Literal[
    "trigger", "summary", "impact", "root_causes", "chain", "factors", "actions", "lessons"
]


@dataclass(frozen=True)
class Question:
    """One question of the drafting prompt."""

    name: QuestionName
    answer: type[Answer]
    max_tokens: int
    max_items: int
    """Largest list the schema allows (lists inside the answer)."""
    needs: tuple[QuestionName, ...] = ()
    """Questions whose answers this one is shown."""


QUESTIONS: dict[QuestionName, Question] = {
    q.name: q
    for q in (
        Question("trigger", TriggerAnswer, 220, 4),
        Question("lessons", LessonsAnswer, 520, 2),
        Question("root_causes", RootCausesAnswer, 420, 3, needs=("trigger",)),
        Question("summary", SummaryAnswer, 300, 6, needs=("trigger", "root_causes")),
        Question("impact", ImpactAnswer, 220, 6, needs=("trigger", "root_causes")),
        Question("chain", ChainAnswer, 480, 4, needs=("trigger", "root_causes")),
        Question("factors", FactorsAnswer, 360, 4, needs=("root_causes",)),
        Question("actions", ActionsAnswer, 480, 5, needs=("root_causes", "factors")),
    )
}
"""Every question, in the order a sequential model is asked them (dependencies first)."""

STAGES: tuple[tuple[QuestionName, ...], ...] = (
    ("trigger", "lessons"),
    ("root_causes",),
    ("summary", "impact", "chain", "factors"),
    ("actions",),
)
"""Questions that may be asked at the same time, stage by stage."""


CHOICE_FIELDS = ("trigger", "condition", "step", "factor", "action")
"""Fields whose value is one of a list of code-found candidates (ids)."""


WORDED = ("text", "evidence_ids")
"""What a choose-only answer leaves out of its chosen items."""


def json_schema(
    question: Question,
    evidence_ids: list[str],
    choices: Mapping[str, Sequence[str]],
    *,
    own_words: bool = True,
) -> dict[str, Any]:
    """The answer's JSON schema, every object closed and fully required, with the citable ids
    and the candidate ids of each choice field (`trigger`: candidate triggers and "none",
    `condition`: candidate conditions, `step`: candidate chain steps) as enums, and list
    lengths capped. Without `own_words`, items with a choice field have only the choice (and
    the step's kind): the model chooses, our code quotes."""
    schema = copy.deepcopy(question.answer.model_json_schema())
    ids = sorted(set(evidence_ids))

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            if key != "properties":
                node.pop("title", None)
            if node.get("type") == "object" and "properties" in node:
                if not own_words and set(CHOICE_FIELDS) & set(node["properties"]):
                    for name in WORDED if "trigger" not in node["properties"] else ():
                        node["properties"].pop(name, None)
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            if key == "evidence_ids":
                node["items"] = {"type": "string", "enum": ids} if ids else {"type": "string"}
                node["maxItems"] = 4
            elif key in CHOICE_FIELDS and node.get("type") == "string":
                node["enum"] = list(choices.get(key, ())) or ["none"]
            elif key in MAX_CHARS and node.get("type") == "string":
                short = question.name == "chain" and key == "text"
                node["maxLength"] = STEP_CHARS if short else MAX_CHARS[key]
            elif node.get("type") == "array":
                node["maxItems"] = question.max_items
            for child_key, child in node.items():
                walk(child, child_key)
        elif isinstance(node, list):
            for child in node:
                walk(child, None)

    walk(schema, None)
    return schema
