"""A draft analysis and its review: suggestions, notes, follow-ups, model usage and reviewer
decisions. What the drafting and review workflow stores; ids, review state and provenance
are set by our code, never by a model.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import (
    Field,
    model_validator,
)

from rca.domain.postmortem import (
    ActionItem,
    CausalNode,
    ContributingFactor,
    PostmortemTimelineEntry,
)
from rca.domain.values import Frozen, Identifier, Line, Name, Timestamp, no_duplicates

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
    addresses: list[Identifier] = Field(default_factory=list)
    """Ids of the suggestions of the same draft this one addresses (an action item: the root
    cause or contributing factor it would prevent, detect or mitigate)."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        check_content(self.section, self.content)
        no_duplicates(self.evidence_ids, "cited evidence id")
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
    at: Timestamp
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
    CONTESTED = "contested"
    """Evidence taken back or disputed later in the incident (a contested theory)."""
    MISSING_EVIDENCE = "missing_evidence"
    """Kinds of evidence the incident does not have (no alerts, no logs, ...)."""


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
    created_at: Timestamp
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
        no_duplicates([s.id for s in self.suggestions], "suggestion id")
        return self
