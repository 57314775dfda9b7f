"""Calibrating the matching metric: above which cosine a drafted action item or contributing
factor counts as a reviewed one.

The item scores (`evals.draft_scores.ItemScore`) match drafted items to reviewed ones one to
one and count a pair only above a similarity threshold. That threshold decides the F1 a draft
gets, so it is set from data: pairs of (drafted item, reviewed item) labelled by hand, "same
intent" or not, where "same" means a reviewer would tick the reviewed item off as delivered by
the drafted one. `propose_pairs` picks the pairs worth labelling from an eval run (each drafted
item with its nearest reviewed items, where the decision is made); `calibrate` sweeps the
threshold and keeps the one that agrees with the labels best beyond chance (Cohen's kappa).

A labelled pair names the reviewed item by case id, section and index rather than copying its
text, so the labels stay valid only as long as the case does; `resolve` says which pairs no
longer resolve.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from evals.draft_eval import EvalCase
from rca.domain import Draft, SuggestionSection
from rca.errors import InvalidArgument, InvalidInput, Problem
from rca.ports import Embedder

Section = Literal["action", "factor"]
SECTIONS: dict[Section, SuggestionSection] = {
    "action": SuggestionSection.ACTION_ITEM,
    "factor": SuggestionSection.CONTRIBUTING_FACTOR,
}


@dataclass(frozen=True)
class Pair:
    """A drafted item and the reviewed item it is compared with; `same` is the label (None
    while unlabelled)."""

    section: Section
    case: str
    index: int
    """Position of the reviewed item in the case's `action_items` or `contributing_factors`."""
    drafted: str
    same: bool | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "section": self.section,
            "case": self.case,
            "index": self.index,
            "drafted": self.drafted,
            "same": self.same,
        }


@dataclass(frozen=True)
class Row:
    """Agreement with the labels at one threshold."""

    threshold: float
    agreement: float
    kappa: float
    precision: float
    """Of the pairs the metric calls a match, the share labelled the same."""
    recall: float
    """Of the pairs labelled the same, the share the metric calls a match."""


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and how well it agrees with the labels."""

    best: Row
    rows: list[Row]
    pairs: int
    same: int
    unresolved: int


def reviewed_items(case: EvalCase, section: Section) -> list[str]:
    """The reviewed action items' or factors' texts of a case, in order."""
    if section == "action":
        return [a.text for a in case.reviewed.action_items]
    return [f.text for f in case.reviewed.contributing_factors]


def load_pairs(path: Path) -> list[Pair]:
    """Pairs from a JSON-lines file; a malformed line is an error naming it."""
    pairs: list[Pair] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            section = raw["section"]
            if section not in SECTIONS:
                raise ValueError(f"section must be action or factor, not {section!r}")
            same = raw.get("same")
            if same is not None and not isinstance(same, bool):
                raise ValueError("same must be true, false or null")
            pairs.append(
                Pair(section, str(raw["case"]), int(raw["index"]), str(raw["drafted"]), same)
            )
        except (ValueError, KeyError, TypeError) as err:
            reason = f"not a labelled pair ({err}); fix the line"
            raise InvalidInput([Problem(reason, str(path), number)]) from err
    return pairs


def write_pairs(path: Path, pairs: Iterable[Pair]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(p.to_json(), ensure_ascii=False) + "\n" for p in pairs),
        encoding="utf-8",
    )


def resolve(pairs: Sequence[Pair], cases: Mapping[str, EvalCase]) -> list[tuple[Pair, str]]:
    """Each labelled pair with its reviewed item's text; pairs whose case or item is gone are
    left out (the caller reports how many)."""
    out: list[tuple[Pair, str]] = []
    for pair in pairs:
        case = cases.get(pair.case)
        items = reviewed_items(case, pair.section) if case else []
        if pair.same is not None and 0 <= pair.index < len(items):
            out.append((pair, items[pair.index]))
    return out


def cosines(embedder: Embedder, resolved: Sequence[tuple[Pair, str]]) -> np.ndarray:
    """The cosine of each (drafted, reviewed) pair, with the embedder the scores use."""
    if not resolved:
        return np.zeros(0)
    left = np.asarray(embedder.embed([p.drafted for p, _ in resolved], "document"))
    right = np.asarray(embedder.embed([text for _, text in resolved], "document"))
    result: np.ndarray = np.clip((left * right).sum(axis=1), -1.0, 1.0)
    return result


def sweep(sims: np.ndarray, labels: np.ndarray, thresholds: Iterable[float]) -> list[Row]:
    """Agreement, Cohen's kappa, precision and recall of "cosine >= t" against the labels."""
    rows: list[Row] = []
    n = len(labels)
    for t in thresholds:
        predicted = sims >= t
        agree = float((predicted == labels).mean()) if n else 0.0
        p_yes = float(predicted.mean()) if n else 0.0
        l_yes = float(labels.mean()) if n else 0.0
        chance = p_yes * l_yes + (1 - p_yes) * (1 - l_yes)
        kappa = (agree - chance) / (1 - chance) if chance < 1 else 0.0
        hits = int((predicted & labels).sum())
        rows.append(
            Row(
                round(float(t), 2),
                round(agree, 4),
                round(kappa, 4),
                round(hits / int(predicted.sum()), 4) if predicted.any() else 0.0,
                round(hits / int(labels.sum()), 4) if labels.any() else 0.0,
            )
        )
    return rows


def calibrate(
    pairs: Sequence[Pair], cases: Mapping[str, EvalCase], embedder: Embedder
) -> Calibration:
    """The threshold (0.20-0.95 by 0.01) whose agreement with the labels is best beyond chance
    (Cohen's kappa); among equally good thresholds, the middle one (the plateau's centre is the
    least sensitive to noise). Raw agreement is not the criterion: most pairs are labelled
    different, so a threshold that matches nothing already agrees with almost all of them."""
    resolved = resolve(pairs, cases)
    if len(resolved) < 2:
        raise InvalidArgument(
            f"only {len(resolved)} labelled pairs resolve against the cases; label more pairs "
            "or point --cases at the cases they were drawn from"
        )
    sims = cosines(embedder, resolved)
    labels = np.asarray([bool(p.same) for p, _ in resolved])
    rows = sweep(sims, labels, np.round(np.arange(0.20, 0.951, 0.01), 2))
    top = max(r.kappa for r in rows)
    tied = [r for r in rows if r.kappa == top]
    best = tied[len(tied) // 2]
    labelled = sum(p.same is not None for p in pairs)
    return Calibration(best, rows, len(resolved), int(labels.sum()), labelled - len(resolved))


def propose_pairs(
    cases: Sequence[EvalCase],
    drafts: Mapping[str, Draft],
    embedder: Embedder,
    *,
    nearest: int = 2,
    seed: int = 7,
) -> list[Pair]:
    """Pairs worth labelling, unlabelled and shuffled: each drafted action item and factor with
    its `nearest` reviewed items by cosine (where the threshold decides), so the labeller sees
    close calls and clear ones, never the cosine."""
    proposed: list[Pair] = []
    for case in cases:
        draft = drafts.get(case.id)
        if draft is None:
            continue
        for section, kind in SECTIONS.items():
            reviewed = reviewed_items(case, section)
            drafted = [
                str(getattr(s.content, "text", s.content))
                for s in draft.suggestions
                if s.section is kind
            ]
            if not reviewed or not drafted:
                continue
            left = np.asarray(embedder.embed(drafted, "document"))
            right = np.asarray(embedder.embed(reviewed, "document"))
            sim = left @ right.T
            for row, text in enumerate(drafted):
                for index in np.argsort(-sim[row])[:nearest]:
                    proposed.append(Pair(section, case.id, int(index), text))
    unique = list(dict.fromkeys(proposed))
    random.Random(seed).shuffle(unique)
    return unique


def format_calibration(result: Calibration, every: float = 0.05) -> str:
    """A Markdown table of the sweep (every `every`) and the chosen threshold."""
    lines = [
        f"{result.pairs} labelled pairs ({result.same} same intent); "
        f"{result.unresolved} did not resolve against the cases",
        "",
        "| threshold | agreement | kappa | precision | recall |",
        "|---:|---:|---:|---:|---:|",
    ]
    step = round(every * 100)
    for row in result.rows:
        if round(row.threshold * 100) % step == 0 or row is result.best:
            mark = " **chosen**" if row is result.best else ""
            lines.append(
                f"| {row.threshold:.2f}{mark} | {row.agreement:.3f} | {row.kappa:.3f} | "
                f"{row.precision:.3f} | {row.recall:.3f} |"
            )
    return "\n".join(lines) + "\n"
