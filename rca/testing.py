"""Fakes that ship with the package, for tests and offline demos."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence

from rca.ports import InputType

_WORD = re.compile(r"\w\w+", re.UNICODE)


class FakeEmbedder:
    """A deterministic bag-of-words embedder: texts sharing words get similar vectors.

    Each lowercased word is hashed to a few signed buckets; the sum is normalised. Good enough
    for tests to check ranking behaviour without loading a model.
    """

    def __init__(self, dimension: int = 64, model_id: str = "fake-bow") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.calls: list[tuple[int, InputType]] = []

    @property
    def model_id(self) -> str:
        """The fake model's id."""
        return self._model_id

    @property
    def dimension(self) -> int:
        """Vector length."""
        return self._dimension

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        """Normalised hashed bag-of-words vectors."""
        self.calls.append((len(texts), input_type))
        return [self._vector(text) for text in texts]

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self._dimension
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            for i in range(2):
                bucket = int.from_bytes(digest[i * 3 : i * 3 + 3], "big") % self._dimension
                vector[bucket] += 1.0 if digest[6 + i] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        if norm == 0.0:
            vector[0] = 1.0
            return vector
        return [v / norm for v in vector]


# --- a fake analyst model ------------------------------------------------------------------

_QUESTION_KEYS: tuple[tuple[str, str], ...] = (
    ("which change most likely set off", "trigger"),
    ("write the executive summary", "summary"),
    ("describe the impact", "impact"),
    ("which of these conditions let the trigger do harm", "root_causes"),
    ("show how the failure spread", "chain"),
    ("contributing factors: conditions", "factors"),
    ("which of these actions would stop", "actions"),
    ("list lessons learned", "lessons"),
)
_EVIDENCE_LINE = re.compile(r"^\[(?P<id>[A-Za-z0-9][A-Za-z0-9_.:-]*)\] \S+ \S+ (?P<rest>.*)$", re.M)
_CANDIDATE = re.compile(r"Candidate trigger \[(?P<id>[^\]]+)\]")
_FIRST_ERROR = re.compile(r"First error \[(?P<id>[^\]]+)\]")
_CHOICES = re.compile(
    r"<<<BEGIN UNTRUSTED (?P<name>CONDITIONS|STEPS|FACTORS|ACTIONS) \w+>>>\n"
    r"(?P<body>.*?)\n<<<END[^\n]*",
    re.S,
)
_CONDITION = re.compile(r"^\[(?P<id>[A-Za-z0-9][A-Za-z0-9_.:-]*)\] ", re.M)


def question_of(messages: Sequence[dict[str, str]]) -> str:
    """Which drafting question the last user message asks (`unknown` if none)."""
    text = messages[-1]["content"].lower() if messages else ""
    if "your answer had these problems" in text:
        text = next((m["content"].lower() for m in messages if m["role"] == "user"), text)
    return next((name for key, name in _QUESTION_KEYS if key in text), "unknown")


def fake_analyst(messages: Sequence[dict[str, str]]) -> str:
    """A deterministic stand-in for a model that answers the drafting questions by quoting the
    evidence it was shown: the nearest candidate trigger; as the root cause, the first error,
    citing the candidate condition that shares most words with it; the first error signatures
    (among the candidate steps) as chain steps; the alerts as impact; the first two candidate
    factors and the first three candidate actions. Its answers are grounded
    by construction, so they pass validation; tests use it to exercise the whole pipeline
    through litellm."""
    user = next((m["content"] for m in messages if m["role"] == "user"), "")
    listed = {m["name"]: _CONDITION.findall(m["body"]) for m in _CHOICES.finditer(user)}
    conditions, candidate_steps = listed.get("CONDITIONS", []), listed.get("STEPS", [])
    user = _CHOICES.sub("", user)
    lines = {m["id"]: m["rest"].split(": ", 1)[-1] for m in _EVIDENCE_LINE.finditer(user)}
    ids = list(lines)
    candidates = _CANDIDATE.findall(user)
    errors = _FIRST_ERROR.findall(user) or ids[:2]
    kinds = {m["id"]: m["rest"].split(" ", 1)[0] for m in _EVIDENCE_LINE.finditer(user)}
    alerts = [i for i in ids if kinds[i] == "alert"] or ids[:1]

    def say(ident: str, prefix: str = "") -> dict[str, object]:
        return {"text": f"{prefix}{lines.get(ident, ident)[:200]}", "evidence_ids": [ident]}

    question = question_of(messages)
    answer: dict[str, object]
    if question == "trigger":
        chosen = candidates[0] if candidates else "none"
        why = lines.get(chosen, "no change fits")[:150]
        answer = {"trigger": chosen, "explanation": f"It changed {why}", "evidence_ids": [chosen]}
        if chosen == "none":
            answer["evidence_ids"] = []
    elif question in ("summary", "impact"):
        first = alerts[0] if alerts else None
        text = lines.get(first, "insufficient evidence") if first else "insufficient evidence"
        answer = {question: text[:300], "evidence_ids": [first] if first else []}
    elif question == "root_causes":
        first = set(_WORD.findall(lines.get(errors[0], "").lower())) if errors else set()
        chosen = sorted(
            conditions,
            key=lambda i: -len(first & set(_WORD.findall(lines.get(i, "").lower()))),
        )[:1]
        answer = {
            "root_causes": [
                {**say(errors[0], "A condition let this happen: "), "condition": i} for i in chosen
            ]
        }
    elif question == "chain":
        steps = [{**say(i), "kind": "cause", "step": i} for i in errors[:2]]
        steps += [{**say(i), "kind": "symptom", "step": i} for i in alerts[:1]]
        answer = {"steps": [s for s in steps if s["step"] in candidate_steps]}
    elif question == "factors":
        answer = {"factors": [{"factor": i, "text": ""} for i in listed.get("FACTORS", [])[:2]]}
    elif question == "actions":
        answer = {"actions": [{"action": i, "text": ""} for i in listed.get("ACTIONS", [])[:3]]}
    elif question == "lessons":
        answer = {"went_well": [say(i) for i in alerts[:1]], "went_wrong": [], "lucky": []}
    else:
        answer = {}
    return json.dumps(answer)


def rules_analyst(messages: Sequence[dict[str, str]]) -> str:
    """The drafting questions answered by code alone, for ablations (`rca eval run --rules`):
    the nearest candidate trigger, the three best-ranked candidate conditions as root causes,
    as chain steps the first two candidate steps that are not alerts and the first alert, the
    two best candidate factors and the three best candidate actions, and nothing for the
    questions that need writing (the draft's rules fill summary and impact).
    What a model adds is what it scores above this."""
    user = next((m["content"] for m in messages if m["role"] == "user"), "")
    listed = {m["name"]: _CONDITION.findall(m["body"]) for m in _CHOICES.finditer(user)}
    evidence = list(_EVIDENCE_LINE.finditer(_CHOICES.sub("", user)))
    alerts = {m["id"] for m in evidence if m["rest"].startswith("alert")}
    texts = {m["id"]: m["rest"].split(": ", 1)[-1] for m in evidence}
    question = question_of(messages)
    answer: dict[str, object]
    if question == "trigger":
        chosen = next(iter(_CANDIDATE.findall(user)), "none")
        why = texts.get(chosen, "")[:200] or "no change fits"
        answer = {"trigger": chosen, "explanation": why, "evidence_ids": [chosen]}
        if chosen == "none":
            answer["evidence_ids"] = []
    elif question == "root_causes":
        answer = {"root_causes": [{"condition": i} for i in listed.get("CONDITIONS", [])[:3]]}
    elif question == "chain":
        steps = listed.get("STEPS", [])
        causes = [i for i in steps if i not in alerts][:2]
        symptom = [i for i in steps if i in alerts][:1]
        answer = {
            "steps": [{"step": i, "kind": "cause"} for i in causes]
            + [{"step": i, "kind": "symptom"} for i in symptom]
        }
    elif question in ("summary", "impact"):
        answer = {question: "", "evidence_ids": []}
    elif question == "factors":
        answer = {"factors": [{"factor": i} for i in listed.get("FACTORS", [])[:2]]}
    elif question == "actions":
        answer = {"actions": [{"action": i} for i in listed.get("ACTIONS", [])[:3]]}
    elif question == "lessons":
        answer = {"went_well": [], "went_wrong": [], "lucky": []}
    else:
        answer = {question: []}
    return json.dumps(answer)
