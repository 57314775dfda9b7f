"""From one answer of the model to claims: shape, choices, citations and support checked
(`rca.drafting.validation`), what a re-ask should fix, and choose-then-quote for root causes
and chain steps (the chosen evidence line's own text when the model's wording is not borne
out).

The model's own words are dropped whole, never trimmed, when they name a link or a domain,
ask to hand over credentials or to disable monitoring or a safeguard, address the model or the
report's writer, or blame or name a person (`words_problem`): that is how a model that obeyed
an injection in the evidence writes. A root cause or chain step then falls back to the chosen
evidence line's text, a factor or action to the candidate's own text, a trigger keeps the
model's choice without its explanation.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from rca.drafting.assembly import Claim, people_of, persons_of
from rca.drafting.blameless import FIRST_PERSON, as_stated, check_blameless
from rca.drafting.context import QUOTE_CHARS, DraftContext, clip
from rca.drafting.proposals import names_person
from rca.drafting.questions import Question, QuestionName
from rca.drafting.steering import hazard
from rca.drafting.validation import COPIED, Cleaned, clean, is_insufficient, terms

NAMES_A_LINK = "it names a link or a domain"
EXPLANATION_LEFT_OUT = "the model's explanation was left out (see the draft's notes)"

LOCAL_SUPPORT: frozenset[QuestionName] = frozenset({"root_causes", "chain"})
"""Questions whose claims must rest on this incident's evidence: citing a past incident that
says the same is not support (it is how a small model copies another incident's cause)."""
_STEM = re.compile(r"^(?:the impact happened )?because\s+(?:of\s+)?", re.IGNORECASE)


def without_stem(text: str) -> str:
    """A root cause without the "The impact happened because" it was asked to complete."""
    rest = _STEM.sub("", text, count=1)
    if rest == text or not rest:
        return text
    return rest[:1].upper() + rest[1:]


def check_answer(
    ctx: DraftContext, question: Question, text: str, retried: bool
) -> tuple[list[Claim], list[str], list[str]]:
    """Claims that passed; problems worth a re-ask; reasons for claims dropped for good."""
    try:
        answer = question.answer.model_validate(json.loads(text))
    except (ValueError, ValidationError) as err:
        return [], [f"the answer is not valid JSON of the requested shape: {short(err)}"], []
    raw = raw_claims(question.name, answer.model_dump(mode="python"))
    known = ctx.sources.ids()
    kept: list[Claim] = []
    problems: list[str] = []
    dropped: list[str] = []
    seen: set[str] = set()
    allowed = ctx.choices()
    for position, (body, cited, fields) in enumerate(raw, start=1):
        choice, problem = chosen_candidate(allowed, fields)
        if problem:
            problems.append(problem)
        if problem is not None:
            continue
        if choice is not None and question.name in PROPOSALS:
            claim, why = proposed(ctx, question.name, choice[1], fields, body, retried)
            if why:
                wording = clip(clean(body).text)
                dropped.append(f"kept the candidate's own text instead of '{wording}': {why}")
            keep_new(kept, seen, claim)
            continue
        if choice is not None and question.name != "trigger" and not body.strip():
            chosen = Claim("", [choice[1]], fields, retried)
            keep_new(kept, seen, quote_chosen(ctx, question.name, chosen))
            continue
        cleaned = clean(body, known)
        if question.name == "root_causes":
            cleaned.text = without_stem(cleaned.text)
        if is_insufficient(cleaned.text) or cleaned.text.lower() in seen:
            continue
        ids = list(dict.fromkeys([*cited, *cleaned.inline_ids]))
        if choice is not None:
            ids = list(dict.fromkeys([choice[1], *ids]))
        local = question.name in LOCAL_SUPPORT
        verdict = ctx.sources.check(
            cleaned.text, ids, support_from=ctx.incident_ids if local else None
        )
        if verdict.retry:
            problems.extend(f"item {position}: {p}" for p in verdict.retry)
            if retried:
                dropped.append(f"dropped '{clip(cleaned.text)}': {verdict.retry[0]}")
            continue
        claim = Claim(cleaned.text, ids, fields, retried)
        why = verdict.drop or words_problem(ctx, cleaned)
        if why is not None:
            dropped.append(f"dropped '{clip(cleaned.text)}': {why}")
            if question.name == "trigger" and not verdict.drop:
                # A candidate chosen for a supported reason stands, without the explanation.
                claim = Claim(EXPLANATION_LEFT_OUT, ids, fields, retried)
                keep_new(kept, seen, claim)
            else:
                keep_new(kept, seen, quote_chosen(ctx, question.name, claim))
            continue
        keep_new(kept, seen, claim)
    return kept, problems, dropped


def words_problem(ctx: DraftContext, cleaned: Cleaned) -> str | None:
    """Why the model's own words (`cleaned`) cannot be kept at all, or None: they name a link
    or a domain, or are a `hazard` (steering, blaming or naming a person)."""
    if cleaned.removed_links:
        return NAMES_A_LINK
    return hazard(cleaned.text, people_of(ctx.incident), persons_of(ctx.incident))


PROPOSALS: frozenset[QuestionName] = frozenset({"factors", "actions"})
"""Questions whose answers are proposals, not claims of fact: checked for what a proposal
must be (blameless, specific, about this incident), not for word overlap with evidence."""
MIN_PROPOSAL_WORDS = 6
REWORDED = 0.3
"""A model's wording of a candidate shares at least this share of its words with it: more
specific, not something else."""
_VAGUE = re.compile(
    r"^(improve|enhance|increase|better|review|strengthen|be more)\b[^.]{0,40}$", re.IGNORECASE
)


def proposed(
    ctx: DraftContext,
    name: QuestionName,
    ident: str,
    fields: dict[str, Any],
    text: str,
    retried: bool,
) -> tuple[Claim | None, str | None]:
    """A chosen candidate factor or action as a claim: the model's wording when it passes the
    checks for proposals, else the candidate's own text; and why the wording was not kept."""
    if ctx.proposals is None:
        return None, None
    if name == "factors":
        factor = ctx.proposals.factor(ident)
        if factor is None:
            return None, None
        own, ids, source = factor.text, factor.evidence_ids, factor.source
        extra: dict[str, Any] = {"category": factor.category}
    else:
        action = ctx.proposals.action(ident)
        if action is None:
            return None, None
        own, ids, source = action.text, action.evidence_ids, action.source
        extra = {"kind": action.kind, "priority": action.priority, "owner": action.owner}
    cleaned = clean(text) if text.strip() else None
    wording = cleaned.text if cleaned is not None else ""
    why = None
    if cleaned is not None and wording:
        why = words_problem(ctx, cleaned) or proposal_problem(ctx, wording, own)
    kept = wording if wording and why is None else own
    return Claim(kept, ids, {**fields, **extra, "source": source}, retried), why


def proposal_problem(ctx: DraftContext, text: str, candidate: str) -> str | None:
    """Why a model's wording of a factor or action cannot stand, or None."""
    if names_person(text, people_of(ctx.incident)):
        return "it blames a person"
    if len(text.split()) < MIN_PROPOSAL_WORDS or _VAGUE.match(text):
        return "it is too vague to check"
    lowered = text.lower()
    own = {s.lower() for s in ctx.incident.services}
    for pm in ctx.similar:
        foreign = [s for s in pm.services if s.lower() not in own and s.lower() in lowered]
        if foreign or pm.id.lower() in lowered:
            return f"it names {pm.id}, another incident"
    words = terms(text) or {lowered}
    mine = len(words & terms(candidate)) / len(words)
    for pm in ctx.similar:
        copied = len(words & ctx.sources.terms_of(pm.id)) / len(words)
        if copied >= COPIED and copied > mine:
            return f"it restates {pm.id}, another incident"
    named = [s for s in ctx.incident.services if s.lower() in candidate.lower()]
    if named and not any(s.lower() in lowered for s in named):
        return f"it does not name {named[0]}, the component it is about"
    if mine < REWORDED:
        return "it says something other than the candidate it chose"
    return None


def quote_chosen(ctx: DraftContext, name: QuestionName, claim: Claim) -> Claim | None:
    """Choose-then-quote: a root cause or chain step whose wording the evidence does not
    bear out keeps the model's choice (the condition, or the first evidence line it cited)
    but takes that line's own text; anything else is dropped (None)."""
    if name not in ("root_causes", "chain"):
        return None
    source = next(
        (
            i
            for i in claim.evidence_ids
            if i in ctx.incident_ids and i not in ctx.sources.suspicious
        ),
        None,
    )
    if source is None:
        return None
    quote = clip(clean(ctx.sources.texts[source]).text, QUOTE_CHARS)
    stated = as_stated(quote)  # "we compute ..." -> "the team computes ..."
    if is_insufficient(quote) or (
        name == "root_causes"
        and (FIRST_PERSON.search(quote) or check_blameless(stated, people_of(ctx.incident)))
    ):
        return None  # a responder's first-person account or a blaming line is never a cause
    voice = "" if stated == quote else ", stated in the third person without hindsight"
    why = (
        "its own wording was not supported by the evidence it cited (see the draft's notes)"
        if claim.text
        else "it was asked to choose, not to word"
    )
    return Claim(
        stated,
        claim.evidence_ids,
        claim.fields,
        claim.retried,
        note=f"quoted from [{source}]{voice}, the evidence the model chose; {why}",
    )


def chosen_candidate(
    allowed: dict[str, list[str]], fields: dict[str, Any]
) -> tuple[tuple[str, str] | None, str | None]:
    """The item's choice field and value, if it has one; and a problem worth a re-ask if the
    value is not a candidate ("" for "none": skip the item quietly, None: go on)."""
    for key, ids in allowed.items():
        if key in fields:
            value = str(fields[key])
            if value == "none":
                return None, ""
            if value not in ids:
                return None, f"{value!r} is not one of the candidate {key} ids"
            return (key, value), None
    return None, None


def keep_new(kept: list[Claim], seen: set[str], claim: Claim | None) -> None:
    """Keeps `claim` unless it is None or says what a kept claim already says."""
    if claim is not None and claim.text.lower() not in seen:
        seen.add(claim.text.lower())
        kept.append(claim)


def raw_claims(
    name: QuestionName, data: dict[str, Any]
) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(text, cited ids, other fields) for each statement in an answer."""
    if name == "trigger":
        return [(data["explanation"], data["evidence_ids"], {"trigger": data["trigger"]})]
    if name in ("summary", "impact"):
        return [(data[name], data["evidence_ids"], {})]
    if name == "lessons":
        return [
            (item["text"], item["evidence_ids"], {"heading": heading})
            for heading in ("went_well", "went_wrong", "lucky")
            for item in data[heading][:2]
        ]
    key = {"root_causes": "root_causes", "chain": "steps", "factors": "factors"}.get(name, name)
    found: list[tuple[str, list[str], dict[str, Any]]] = []
    for item in data[key]:
        rest = {k: v for k, v in item.items() if k not in ("text", "evidence_ids")}
        found.append((item.get("text", ""), item.get("evidence_ids", []), rest))
    return found


def reask(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems[:8])
    return (
        f"Your answer had these problems:\n{listed}\n"
        "Answer the same question again, as JSON only, citing only ids that appear in the "
        "evidence or among the similar past incidents."
    )


def short(err: Exception) -> str:
    return " ".join(str(err).split())[:300]
