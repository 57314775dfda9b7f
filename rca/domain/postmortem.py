"""A reviewed postmortem: summary, causal chain, contributing factors, action items, lessons.

Postmortem follows the interchange format exactly; the causal chain is checked to be a DAG
from root causes to impact. Every list has a ceiling (the `MAX_` constants), so one document
cannot make the pages that draw it, or the searches that read it, do unbounded work.
"""

from __future__ import annotations

from datetime import date as CalendarDate
from typing import Any

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
)

from rca.domain.values import (
    ActionKind,
    ActionStatus,
    FactorCategory,
    Frozen,
    Identifier,
    Line,
    Name,
    NodeId,
    NodeKind,
    OptionalText,
    Priority,
    RequiredText,
    Severity,
    Timestamp,
    as_stored,
    at_most,
    content_hash,
    no_duplicates,
)

# Postmortem

MAX_CHAIN_NODES = 300
"""Most nodes a causal chain may have: a readable picture holds far fewer, and drawing one
costs time and memory with every node."""
MAX_NODE_LINKS = 50
"""Most nodes one causal-chain node may lead to."""
MAX_TIMELINE_ENTRIES = 500
"""Most entries of a postmortem timeline."""
MAX_FACTORS = 200
"""Most contributing factors."""
MAX_ACTION_ITEMS = 200
"""Most action items."""
MAX_LIST_ITEMS = 100
"""Most items of the other lists: services, root causes, lessons under each heading, tags."""
LIST_LIMITS: dict[str, tuple[int, str]] = {
    "services": (MAX_LIST_ITEMS, "services"),
    "root_causes": (MAX_LIST_ITEMS, "root causes"),
    "contributing_factors": (MAX_FACTORS, "contributing factors"),
    "timeline": (MAX_TIMELINE_ENTRIES, "timeline entries"),
    "action_items": (MAX_ACTION_ITEMS, "action items"),
    "tags": (MAX_LIST_ITEMS, "tags"),
}
"""The ceiling of each list of a postmortem but the causal chain and the lessons."""


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
    """Ids of the nodes this one causes (at most `MAX_NODE_LINKS`)."""

    @field_validator("leads_to", mode="before")
    @classmethod
    def _links(cls, value: Any, info: ValidationInfo) -> Any:
        return at_most(value, MAX_NODE_LINKS, "links from one node", info)


class PostmortemTimelineEntry(Frozen):
    """A key moment in a reviewed postmortem's timeline."""

    at: Timestamp
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

    @field_validator("went_well", "went_wrong", "lucky", mode="before")
    @classmethod
    def _size(cls, value: Any, info: ValidationInfo) -> Any:
        return at_most(value, MAX_LIST_ITEMS, "lessons under one heading", info)

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
    """Conditions that made it likelier or worse (at most `MAX_FACTORS`)."""
    causal_chain: list[CausalNode] = Field(default_factory=list)
    """Root causes → trigger → causes → symptoms → impact, as a DAG (at most `MAX_CHAIN_NODES`)."""
    detection: OptionalText = None
    """How it was noticed and how it could have been noticed sooner."""
    resolution: OptionalText = None
    """What stopped the impact; temporary versus permanent."""
    timeline: list[PostmortemTimelineEntry] = Field(default_factory=list)
    """Key moments (at most `MAX_TIMELINE_ENTRIES`)."""
    action_items: list[ActionItem] = Field(default_factory=list)
    """Follow-ups (at most `MAX_ACTION_ITEMS`)."""
    lessons: Lessons = Field(default_factory=Lessons)
    """Lessons learned."""
    tags: list[Name] = Field(default_factory=list)
    """Free-form labels."""

    @field_validator(*LIST_LIMITS, mode="before")
    @classmethod
    def _size(cls, value: Any, info: ValidationInfo) -> Any:
        limit, what = LIST_LIMITS[info.field_name or ""]
        return at_most(value, limit, what, info)

    @field_validator("causal_chain", mode="before")
    @classmethod
    def _chain_size(cls, nodes: Any, info: ValidationInfo) -> Any:
        """Refuse an oversized chain before reading its nodes, with a message saying the limit."""
        if isinstance(nodes, list | tuple) and len(nodes) > MAX_CHAIN_NODES and not as_stored(info):
            raise ValueError(
                f"a causal chain has at most {MAX_CHAIN_NODES} nodes, this one has {len(nodes)}: "
                "keep the main path and fold the detail into fewer nodes"
            )
        return nodes

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
    no_duplicates(ids, "causal chain node id")
    known = set(ids)
    for node in nodes:
        no_duplicates(node.leads_to, f"link from {node.id}")
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
