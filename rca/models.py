"""The domain model: incidents with their evidence, reviewed postmortems, drafts and reviews.

Incident and Postmortem follow the interchange format exactly (unknown keys are an error,
naive timestamps are refused); Draft, Suggestion and Review are what the drafting and review
workflow stores. Every model is frozen: a change is a new value.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import date as CalendarDate
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

# ---------------------------------------------------------------------------------------------
# Closed vocabularies


class Severity(StrEnum):
    """Incident severity, SEV1 the worst."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"
    SEV5 = "SEV5"


class TimelineKind(StrEnum):
    """What kind of event an incident timeline entry records."""

    DEPLOY = "deploy"
    CONFIG = "config"
    ALERT = "alert"
    ACTION = "action"
    COMMS = "comms"
    OBSERVATION = "observation"
    NOTE = "note"


class NodeKind(StrEnum):
    """The role of a node in a causal chain."""

    ROOT_CAUSE = "root_cause"
    CONTRIBUTING_FACTOR = "contributing_factor"
    TRIGGER = "trigger"
    CAUSE = "cause"
    SYMPTOM = "symptom"
    IMPACT = "impact"


class FactorCategory(StrEnum):
    """Fishbone (Ishikawa) category of a contributing factor."""

    PEOPLE = "people"
    PROCESS = "process"
    TECHNOLOGY = "technology"
    ENVIRONMENT = "environment"
    EXTERNAL = "external"
    MONITORING = "monitoring"


class ActionKind(StrEnum):
    """What an action item does about the failure."""

    PREVENT = "prevent"
    DETECT = "detect"
    MITIGATE = "mitigate"
    PROCESS = "process"


class Priority(StrEnum):
    """MoSCoW priority of an action item."""

    MUST = "must"
    SHOULD = "should"
    COULD = "could"
    WONT = "wont"


class ActionStatus(StrEnum):
    """Follow-up state of an action item."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    WONT_DO = "wont_do"


class EvidenceKind(StrEnum):
    """The four groups of incident evidence."""

    ALERT = "alert"
    EVENT = "event"
    LOG = "log"
    CHAT = "chat"


# ---------------------------------------------------------------------------------------------
# Constrained strings

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
NODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Every character str.splitlines() treats as a line boundary.
_LINE_BREAKS = re.compile(r"\s*[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+\s*")

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""An id: letters, digits and `_ . : -`, at most 128 characters, starting alphanumeric."""

NodeId = Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN)]
"""A causal-chain node id: letters, digits and `_ . -`, at most 64 characters."""


def _single_line(value: str) -> str:
    """Strip and fold line breaks into single spaces; refuse an empty result."""
    folded = _LINE_BREAKS.sub(" ", value).strip()
    if not folded:
        raise ValueError("must not be empty")
    return folded


def _free_text(value: str) -> str:
    """Normalise line endings and strip surrounding whitespace."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _optional_text(value: str | None) -> str | None:
    """Free text where blank means absent."""
    if value is None:
        return None
    text = _free_text(value)
    return text or None


Line = Annotated[str, StringConstraints(max_length=4_000), AfterValidator(_single_line)]
"""One line of text (a list item); line breaks fold into spaces."""

Name = Annotated[
    str,
    StringConstraints(max_length=100),
    AfterValidator(_single_line),
]
"""A short label: a service name, a tag, an owner."""

Text = Annotated[str, StringConstraints(max_length=100_000), AfterValidator(_free_text)]
"""Free text, possibly empty, several paragraphs allowed."""

OptionalText = Annotated[
    str | None, StringConstraints(max_length=100_000), AfterValidator(_optional_text)
]
"""Free text where blank means absent."""


def _required_text(value: str) -> str:
    text = _free_text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


RequiredText = Annotated[str, StringConstraints(max_length=100_000), AfterValidator(_required_text)]
"""Free text that must not be blank."""


class Frozen(BaseModel):
    """Base of every domain model: immutable, and unknown keys are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


def _no_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


# ---------------------------------------------------------------------------------------------
# Incident and its evidence


class Alert(Frozen):
    """An alert that fired during the incident."""

    id: Identifier
    """Evidence id, unique inside the incident; drafts cite it."""
    at: AwareDatetime
    """When the alert fired."""
    source: Name | None = None
    """The system that raised it (prometheus, datadog, ...)."""
    name: Name | None = None
    """The alert rule's name."""
    labels: dict[str, str] = Field(default_factory=dict)
    """The alert's labels."""
    text: RequiredText
    """The alert's message."""


class TimelineEvent(Frozen):
    """An event on the incident timeline: a deploy, a config change, an action taken."""

    id: Identifier
    """Evidence id, unique inside the incident."""
    at: AwareDatetime
    """When it happened."""
    kind: TimelineKind
    """What kind of event this is."""
    actor: Name | None = None
    """Who or what did it (a person's handle, a bot, a system)."""
    text: RequiredText
    """What happened."""


class LogLine(Frozen):
    """A log excerpt."""

    id: Identifier
    """Evidence id, unique inside the incident."""
    at: AwareDatetime
    """When it was logged."""
    source: Name | None = None
    """The service or host that logged it."""
    text: RequiredText
    """The log text; may span several lines (a stack trace)."""


class ChatMessage(Frozen):
    """A message from the incident channel."""

    id: Identifier
    """Evidence id, unique inside the incident."""
    at: AwareDatetime
    """When it was posted."""
    author: Name | None = None
    """Who posted it."""
    text: RequiredText
    """The message."""


EvidenceItem = Alert | TimelineEvent | LogLine | ChatMessage

_EVIDENCE_GROUPS: dict[str, str] = {
    "alerts": "alert",
    "timeline": "event",
    "logs": "log",
    "chat": "chat",
}


def _assign_evidence_ids(data: dict[str, Any]) -> dict[str, Any]:
    """Give every evidence item without an id one of the form `alert-1`, `event-2`, `log-3`."""
    taken: set[str] = set()
    for group in _EVIDENCE_GROUPS:
        items = data.get(group)
        if isinstance(items, list):
            # Only well-formed ids count; anything else fails validation on the field later.
            taken.update(
                item["id"]
                for item in items
                if isinstance(item, dict) and isinstance(item.get("id"), str)
            )
    result = dict(data)
    for group, prefix in _EVIDENCE_GROUPS.items():
        items = data.get(group)
        if not isinstance(items, list):
            continue
        filled: list[Any] = []
        for position, item in enumerate(items, start=1):
            if isinstance(item, dict) and item.get("id") in (None, ""):
                number = position
                while f"{prefix}-{number}" in taken:
                    number += 1
                new_id = f"{prefix}-{number}"
                taken.add(new_id)
                item = {**item, "id": new_id}
            filled.append(item)
        result[group] = filled
    return result


class Incident(Frozen):
    """What an engineer submits for a draft analysis. Everything in it is untrusted text."""

    id: Identifier
    """Incident id; assigned by the service when the submitter leaves it out."""
    title: Line
    """A one-line title."""
    severity: Severity
    """How bad it is."""
    services: list[Name] = Field(default_factory=list)
    """Services involved."""
    started_at: AwareDatetime
    """When the impact started."""
    detected_at: AwareDatetime | None = None
    """When it was noticed (alert fired, report received)."""
    mitigated_at: AwareDatetime | None = None
    """When the impact stopped."""
    resolved_at: AwareDatetime | None = None
    """When the incident was closed."""
    summary: Text = ""
    """The reporter's free text; may be empty."""
    alerts: list[Alert] = Field(default_factory=list)
    """Alerts that fired."""
    timeline: list[TimelineEvent] = Field(default_factory=list)
    """Deploys, config changes, actions, comms, observations."""
    logs: list[LogLine] = Field(default_factory=list)
    """Log excerpts."""
    chat: list[ChatMessage] = Field(default_factory=list)
    """Messages from the incident channel."""
    tags: list[Name] = Field(default_factory=list)
    """Free-form labels."""

    @model_validator(mode="before")
    @classmethod
    def _fill_ids(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = _assign_evidence_ids(data)
            if not data.get("id"):
                data = {**data, "id": new_id("inc")}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        _no_duplicates([item.id for item in self.evidence()], "evidence id")
        for name in ("detected_at", "mitigated_at", "resolved_at"):
            moment: datetime | None = getattr(self, name)
            if moment is not None and moment < self.started_at:
                raise ValueError(f"{name} is before started_at")
        if self.resolved_at and self.mitigated_at and self.resolved_at < self.mitigated_at:
            raise ValueError("resolved_at is before mitigated_at")
        return self

    def evidence(self) -> Iterator[EvidenceItem]:
        """Every evidence item, alerts first, then timeline, logs and chat."""
        yield from self.alerts
        yield from self.timeline
        yield from self.logs
        yield from self.chat

    def evidence_ids(self) -> set[str]:
        """The ids a draft may cite."""
        return {item.id for item in self.evidence()}

    @property
    def time_to_detect(self) -> timedelta | None:
        """From start of impact to detection."""
        return self.detected_at - self.started_at if self.detected_at else None

    @property
    def time_to_mitigate(self) -> timedelta | None:
        """From start of impact to the end of impact."""
        return self.mitigated_at - self.started_at if self.mitigated_at else None

    @property
    def time_to_resolve(self) -> timedelta | None:
        """From start of impact to resolution."""
        return self.resolved_at - self.started_at if self.resolved_at else None


# ---------------------------------------------------------------------------------------------
# Postmortem


class ContributingFactor(Frozen):
    """A condition that made the incident more likely or worse, in a fishbone category."""

    text: Line
    """The factor, blameless wording."""
    category: FactorCategory
    """Fishbone category."""


class CausalNode(Frozen):
    """One node of the causal chain; `leads_to` names the nodes it causes."""

    id: NodeId
    """Node id, unique inside the chain."""
    kind: NodeKind
    """Role in the chain."""
    text: Line
    """What happened or held true."""
    leads_to: list[NodeId] = Field(default_factory=list)
    """Ids of the nodes this one causes."""


class PostmortemTimelineEntry(Frozen):
    """A key moment in a reviewed postmortem's timeline."""

    at: AwareDatetime
    """When."""
    text: Line
    """What happened."""


class ActionItem(Frozen):
    """A follow-up to prevent, detect sooner, mitigate faster, or fix a process."""

    text: Line
    """What to do."""
    kind: ActionKind
    """What it does about the failure."""
    priority: Priority = Priority.SHOULD
    """MoSCoW priority."""
    owner: Name | None = None
    """The team or role that owns it."""
    status: ActionStatus = ActionStatus.OPEN
    """Follow-up state."""


class Lessons(Frozen):
    """Lessons learned, in the three usual headings."""

    went_well: list[Line] = Field(default_factory=list)
    """What went well."""
    went_wrong: list[Line] = Field(default_factory=list)
    """What went wrong."""
    lucky: list[Line] = Field(default_factory=list)
    """Where we got lucky."""

    def is_empty(self) -> bool:
        """True when no lesson is recorded."""
        return not (self.went_well or self.went_wrong or self.lucky)


class Postmortem(Frozen):
    """A reviewed analysis of a past incident or a finalized draft; id, title, summary required."""

    id: Identifier
    """Postmortem id."""
    incident_id: Identifier | None = None
    """The incident it analyses; often absent for imported history."""
    title: Line
    """A one-line title."""
    date: CalendarDate | None = None
    """The day the incident started."""
    severity: Severity | None = None
    """How bad it was."""
    services: list[Name] = Field(default_factory=list)
    """Services involved."""
    summary: RequiredText
    """Executive summary, 2-5 sentences."""
    impact: OptionalText = None
    """Who or what was affected and how much."""
    trigger: OptionalText = None
    """The change or event that set it off."""
    root_causes: list[Line] = Field(default_factory=list)
    """Systemic causes, blameless wording."""
    contributing_factors: list[ContributingFactor] = Field(default_factory=list)
    """Conditions that made it likelier or worse."""
    causal_chain: list[CausalNode] = Field(default_factory=list)
    """Root causes → trigger → causes → symptoms → impact, as a DAG."""
    detection: OptionalText = None
    """How it was noticed and how it could have been noticed sooner."""
    resolution: OptionalText = None
    """What stopped the impact; temporary versus permanent."""
    timeline: list[PostmortemTimelineEntry] = Field(default_factory=list)
    """Key moments."""
    action_items: list[ActionItem] = Field(default_factory=list)
    """Follow-ups."""
    lessons: Lessons = Field(default_factory=Lessons)
    """Lessons learned."""
    tags: list[Name] = Field(default_factory=list)
    """Free-form labels."""

    @field_validator("causal_chain")
    @classmethod
    def _check_chain(cls, nodes: list[CausalNode]) -> list[CausalNode]:
        check_causal_chain(nodes)
        return nodes

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON form; equal content, equal hash."""
        return content_hash(self)


def check_causal_chain(nodes: list[CausalNode]) -> None:
    """Refuse duplicate node ids, links to missing nodes, self-links and cycles."""
    ids = [node.id for node in nodes]
    _no_duplicates(ids, "causal chain node id")
    known = set(ids)
    for node in nodes:
        _no_duplicates(node.leads_to, f"link from {node.id}")
        for target in node.leads_to:
            if target not in known:
                raise ValueError(f"causal chain node {node.id} leads to missing node {target!r}")
            if target == node.id:
                raise ValueError(f"causal chain node {node.id} leads to itself")
    graph = {node.id: node.leads_to for node in nodes}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in ids:
        if start in state:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            current, index = stack[-1]
            targets = graph[current]
            if index == len(targets):
                state[current] = 2
                stack.pop()
                continue
            stack[-1] = (current, index + 1)
            nxt = targets[index]
            if state.get(nxt) == 1:
                raise ValueError(f"causal chain has a cycle through {nxt!r}")
            if nxt not in state:
                state[nxt] = 1
                stack.append((nxt, 0))


# ---------------------------------------------------------------------------------------------
# Drafts, suggestions and reviews


class SuggestionSection(StrEnum):
    """Which part of a postmortem a suggestion proposes."""

    SUMMARY = "summary"
    IMPACT = "impact"
    TRIGGER = "trigger"
    ROOT_CAUSE = "root_cause"
    CONTRIBUTING_FACTOR = "contributing_factor"
    CAUSAL_NODE = "causal_node"
    TIMELINE = "timeline"
    DETECTION = "detection"
    RESOLUTION = "resolution"
    ACTION_ITEM = "action_item"
    LESSON = "lesson"


class ReviewStatus(StrEnum):
    """Where a suggestion stands in review."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    EDITED = "edited"
    REJECTED = "rejected"


class ReviewDecision(StrEnum):
    """What a reviewer decided about one suggestion."""

    ACCEPT = "accept"
    EDIT = "edit"
    REJECT = "reject"


class LessonContent(Frozen):
    """A lesson suggestion: the heading it belongs under and its text."""

    heading: Literal["went_well", "went_wrong", "lucky"]
    """Which of the three lesson headings."""
    text: Line
    """The lesson."""


SuggestionContent = (
    str | ContributingFactor | CausalNode | PostmortemTimelineEntry | ActionItem | LessonContent
)

_CONTENT_TYPES: dict[SuggestionSection, type[object]] = {
    SuggestionSection.SUMMARY: str,
    SuggestionSection.IMPACT: str,
    SuggestionSection.TRIGGER: str,
    SuggestionSection.ROOT_CAUSE: str,
    SuggestionSection.DETECTION: str,
    SuggestionSection.RESOLUTION: str,
    SuggestionSection.CONTRIBUTING_FACTOR: ContributingFactor,
    SuggestionSection.CAUSAL_NODE: CausalNode,
    SuggestionSection.TIMELINE: PostmortemTimelineEntry,
    SuggestionSection.ACTION_ITEM: ActionItem,
    SuggestionSection.LESSON: LessonContent,
}


def check_content(section: SuggestionSection, content: SuggestionContent) -> None:
    """Refuse content whose type does not fit the section."""
    expected = _CONTENT_TYPES[section]
    if not isinstance(content, expected):
        raise ValueError(
            f"a {section.value} suggestion needs {expected.__name__} content, "
            f"not {type(content).__name__}"
        )
    if isinstance(content, str) and not content.strip():
        raise ValueError("suggestion content must not be empty")


class LanguageFlag(Frozen):
    """Blaming language found in a suggestion, with a systemic rewording to consider."""

    phrase: str
    """The words flagged, as they appear."""
    reason: str
    """Why they are a problem in a blameless postmortem."""
    suggestion: str
    """How to say it systemically."""


class SuggestionOrigin(StrEnum):
    """What produced a suggestion."""

    MODEL = "model"
    """Written by the language model from the evidence."""
    RULES = "rules"
    """Derived by code from the incident's own fields (timeline, durations, changes)."""
    HISTORY = "history"
    """Borrowed from a similar past postmortem."""


class Basis(StrEnum):
    """Whether a claim is shown by the evidence or proposed to explain it."""

    FACT = "fact"
    HYPOTHESIS = "hypothesis"


class Suggestion(Frozen):
    """One proposed piece of a postmortem, reviewed on its own."""

    id: Identifier
    """Suggestion id, set by our code."""
    section: SuggestionSection
    """Which part of the postmortem it proposes."""
    content: SuggestionContent
    """The proposal; its type depends on the section."""
    evidence_ids: list[Identifier] = Field(default_factory=list)
    """Evidence ids the claim rests on."""
    confidence: float = Field(ge=0.0, le=1.0)
    """The drafter's confidence, 0 to 1."""
    status: ReviewStatus = ReviewStatus.PENDING
    """Review state."""
    version: int = Field(default=1, ge=1)
    """Bumped on every review decision."""
    origin: SuggestionOrigin = SuggestionOrigin.MODEL
    """What produced it."""
    basis: Basis = Basis.HYPOTHESIS
    """Fact (the evidence shows it) or hypothesis (proposed to explain the evidence)."""
    rationale: str | None = Field(default=None, max_length=2_000)
    """Why the drafter proposes it, in a sentence; shown to the reviewer, never stored in the
    postmortem."""
    flags: list[LanguageFlag] = Field(default_factory=list)
    """Blaming language found in the content."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        check_content(self.section, self.content)
        _no_duplicates(self.evidence_ids, "cited evidence id")
        return self


class Review(Frozen):
    """A reviewer's decision on one suggestion."""

    suggestion_id: Identifier
    """The suggestion decided on."""
    reviewer: Name
    """Who decided."""
    decision: ReviewDecision
    """Accept, edit or reject."""
    edited_content: SuggestionContent | None = None
    """The reviewer's version; required for an edit, refused otherwise."""
    at: AwareDatetime
    """When."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.decision is ReviewDecision.EDIT and self.edited_content is None:
            raise ValueError("an edit needs edited_content")
        if self.decision is not ReviewDecision.EDIT and self.edited_content is not None:
            raise ValueError(f"a {self.decision.value} carries no edited_content")
        return self


class NoteKind(StrEnum):
    """What a draft note reports."""

    DEGRADED = "degraded"
    """Part of the drafting ran without a component (e.g. the vector index)."""
    DROPPED = "dropped"
    """A claim the model made was removed by validation."""
    SECTION_FAILED = "section_failed"
    """A whole section could not be drafted."""
    EVIDENCE_OMITTED = "evidence_omitted"
    """Evidence left out or cut to fit the model's context."""
    SUSPICIOUS_INPUT = "suspicious_input"
    """Incident text that addresses the model (possible prompt injection)."""


class DraftNote(Frozen):
    """Something the reviewer should know about how a draft was made."""

    kind: NoteKind
    """What the note reports."""
    section: SuggestionSection | None = None
    """The section concerned, if one."""
    message: str = Field(max_length=2_000)
    """Plain explanation."""
    evidence_ids: list[Identifier] = Field(default_factory=list)
    """Evidence concerned, if any."""


class FollowUp(Frozen):
    """An open action item of a similar past postmortem that bears on this incident."""

    postmortem_id: Identifier
    """The past postmortem."""
    postmortem_title: str
    """Its title."""
    action: ActionItem
    """The action item, as it stands (open or in progress)."""
    related_suggestion_ids: list[Identifier] = Field(default_factory=list)
    """The drafted causes or factors it bears on."""
    similarity: float = Field(ge=-1.0, le=1.0)
    """How close the action is to those causes (cosine or term overlap)."""


class ModelCall(Frozen):
    """One call to a model while drafting (successful or not)."""

    section: str
    """The question asked (trigger, root_causes, ...), with `:retry` for a re-ask."""
    model: str
    """The model that answered or failed."""
    ok: bool
    """Whether it answered."""
    latency_s: float
    """Wall time of the call."""
    prompt_tokens: int = 0
    """Tokens sent."""
    completion_tokens: int = 0
    """Tokens received."""
    cost_usd: float = 0.0
    """Cost, when the provider has a price (0 for local models)."""
    error: str | None = None
    """Why it failed."""


class DraftUsage(Frozen):
    """What a draft cost: model calls, tokens, money and time per stage."""

    calls: list[ModelCall] = Field(default_factory=list)
    """Every model call."""
    stages_s: dict[str, float] = Field(default_factory=dict)
    """Seconds per stage: redaction, retrieval, prompt, model, validation."""

    @property
    def prompt_tokens(self) -> int:
        """Tokens sent, over every call."""
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        """Tokens received, over every call."""
        return sum(c.completion_tokens for c in self.calls)

    @property
    def cost_usd(self) -> float:
        """Cost over every call."""
        return sum(c.cost_usd for c in self.calls)

    @property
    def latency_s(self) -> float:
        """Total of the stage times."""
        return sum(self.stages_s.values())


class Draft(Frozen):
    """A draft analysis of an incident, made of suggestions that reviewers decide on."""

    id: Identifier
    """Draft id, set by our code."""
    incident_id: Identifier
    """The incident analysed."""
    created_at: AwareDatetime
    """When the draft was made."""
    model: Name
    """The model that wrote it (a litellm model string)."""
    prompt_version: Name
    """Version of the prompt template used."""
    similar_postmortem_ids: list[Identifier] = Field(default_factory=list)
    """Past postmortems retrieved and shown to the model."""
    suggestions: list[Suggestion] = Field(default_factory=list)
    """The proposals, one per claim."""
    version: int = Field(default=1, ge=1)
    """Bumped on every review; the ETag of the draft."""
    finalized_postmortem_id: Identifier | None = None
    """Set once the draft became a postmortem; a finalized draft is immutable."""
    degraded: bool = False
    """True when retrieval or a section failed and the draft is less complete than usual."""
    notes: list[DraftNote] = Field(default_factory=list)
    """How the draft was made: degraded parts, dropped claims, omitted evidence."""
    follow_ups: list[FollowUp] = Field(default_factory=list)
    """Open action items of similar past incidents that bear on this one."""
    usage: DraftUsage = Field(default_factory=DraftUsage)
    """Model calls, tokens, cost and time."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        _no_duplicates([s.id for s in self.suggestions], "suggestion id")
        return self


# ---------------------------------------------------------------------------------------------
# Helpers


def canonical_json(model: BaseModel) -> str:
    """Canonical JSON of a model: sorted keys, no whitespace, UTF-8 text."""
    return json.dumps(
        model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def content_hash(model: BaseModel) -> str:
    """SHA-256 hex digest of the model's canonical JSON."""
    return hashlib.sha256(canonical_json(model).encode("utf-8")).hexdigest()


def new_id(prefix: str) -> str:
    """A fresh, time-ordered id such as `inc-20240302T100200-3f9a1c2b`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{prefix}-{stamp}-{secrets.token_hex(4)}"
