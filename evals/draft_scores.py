"""Scoring a draft against a reviewed postmortem: small evaluators with names and versions.

Every evaluator compares a `View` of the draft with a `View` of the reviewed postmortem (a
postmortem can be viewed as a draft too, so a postmortem scored against itself gets the top
score). Scores are in [0, 1]; a metric the reviewed postmortem gives no basis for (no causal
chain, no action items) is None, not 0. Text is compared by embedding cosine (one `embed`
call per case, vectors cached by text) and, for the summary, ROUGE-L.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rouge_score import rouge_scorer
from scipy.optimize import linear_sum_assignment

from rca.domain import (
    ActionItem,
    CausalNode,
    ContributingFactor,
    Draft,
    NodeKind,
    Postmortem,
    SuggestionSection,
)
from rca.ports import Embedder

MATCH_THRESHOLD = 0.6
"""Cosine above which a drafted item counts as the reviewed one (MiniLM; paraphrases of the
same statement score 0.7-0.9, related but different statements 0.4-0.6)."""

ITEM_THRESHOLD = 0.56
"""Cosine above which a drafted action item or contributing factor counts as the reviewed one:
the threshold that agrees best beyond chance with 394 hand-labelled pairs
(`evals/calibration/pairs.jsonl`, `rca eval calibrate`: agreement 0.886, Cohen's kappa 0.37;
on the 240 pairs from our own cases alone the same 0.56, agreement 0.887, kappa 0.21). MiniLM
cosine is a weak judge of "the same action": read item F1 as a rough measure."""

Scores = dict[str, float | None]


@dataclass(frozen=True)
class View:
    """What the evaluators look at, from a draft or from a postmortem."""

    summary: str
    root_causes: tuple[str, ...]
    chain: tuple[CausalNode, ...]
    factors: tuple[ContributingFactor, ...]
    actions: tuple[ActionItem, ...]
    cited: tuple[str, ...] = ()
    """Every cited id, with repeats."""
    claims: int = 0
    uncited: int = 0
    flags: int = 0

    @classmethod
    def of_draft(cls, draft: Draft) -> View:
        """The draft's first summary, its root causes, chain, factors and actions."""

        def of(section: SuggestionSection) -> list[object]:
            return [s.content for s in draft.suggestions if s.section is section]

        summaries = [str(c) for c in of(SuggestionSection.SUMMARY)]
        return cls(
            summary=summaries[0] if summaries else "",
            root_causes=tuple(str(c) for c in of(SuggestionSection.ROOT_CAUSE)),
            chain=tuple(c for c in of(SuggestionSection.CAUSAL_NODE) if isinstance(c, CausalNode)),
            factors=tuple(
                c
                for c in of(SuggestionSection.CONTRIBUTING_FACTOR)
                if isinstance(c, ContributingFactor)
            ),
            actions=tuple(
                c for c in of(SuggestionSection.ACTION_ITEM) if isinstance(c, ActionItem)
            ),
            cited=tuple(i for s in draft.suggestions for i in s.evidence_ids),
            claims=len(draft.suggestions),
            uncited=sum(not s.evidence_ids for s in draft.suggestions),
            flags=sum(len(s.flags) for s in draft.suggestions),
        )

    @classmethod
    def of_postmortem(cls, pm: Postmortem) -> View:
        """A reviewed postmortem; its root causes fall back to the chain's root-cause nodes."""
        causes = tuple(pm.root_causes) or tuple(
            n.text for n in pm.causal_chain if n.kind is NodeKind.ROOT_CAUSE
        )
        return cls(
            summary=pm.summary,
            root_causes=causes,
            chain=tuple(pm.causal_chain),
            factors=tuple(pm.contributing_factors),
            actions=tuple(pm.action_items),
        )


@dataclass
class Vectors:
    """Embeddings of every text of a case, computed in one call."""

    embedder: Embedder
    cache: dict[str, np.ndarray] = field(default_factory=dict)

    def load(self, texts: Iterable[str]) -> None:
        """Embed the texts not seen yet."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            for text, vector in zip(missing, self.embedder.embed(missing, "document"), strict=True):
                self.cache[text] = np.asarray(vector, dtype=np.float64)

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Cosine matrix (vectors are normalised), rows `left`, columns `right`."""
        if not left or not right:
            return np.zeros((len(left), len(right)))
        a = np.stack([self.cache[t] for t in left])
        b = np.stack([self.cache[t] for t in right])
        result: np.ndarray = np.clip(a @ b.T, -1.0, 1.0)
        return result


def match(sim: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one pairs (row, column) by Hungarian assignment, keeping those ≥ threshold."""
    if sim.size == 0:
        return []
    # Pairs below the threshold weigh nothing, so they cannot push a valid pair out.
    weights = np.where(sim >= threshold, sim, 0.0)
    rows, cols = linear_sum_assignment(-weights)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if sim[r, c] >= threshold]


def prf(matched: int, drafted: int, reviewed: int) -> tuple[float, float, float]:
    """Precision, recall and F1 of `matched` pairs."""
    precision = matched / drafted if drafted else 0.0
    recall = matched / reviewed if reviewed else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


class SummaryScore:
    """ROUGE-L F1 and embedding cosine of the summaries."""

    name, version = "summary", "1"
    _rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)

    def score(self, draft: View, truth: View, vectors: Vectors) -> Scores:
        if not draft.summary:
            return {"summary.rouge_l": 0.0, "summary.similarity": 0.0}
        rouge = self._rouge.score(truth.summary, draft.summary)["rougeL"].fmeasure
        sim = float(vectors.similarity([draft.summary], [truth.summary])[0, 0])
        return {"summary.rouge_l": round(rouge, 4), "summary.similarity": round(max(sim, 0.0), 4)}


class RootCauseScore:
    """For each reviewed root cause, the closest drafted one (averaged), and the best pair."""

    name, version = "root_cause", "1"

    def score(self, draft: View, truth: View, vectors: Vectors) -> Scores:
        if not truth.root_causes:
            return {"root_cause.best_match": None, "root_cause.max": None}
        if not draft.root_causes:
            return {"root_cause.best_match": 0.0, "root_cause.max": 0.0}
        sim = np.maximum(vectors.similarity(truth.root_causes, draft.root_causes), 0.0)
        return {
            "root_cause.best_match": round(float(sim.max(axis=1).mean()), 4),
            "root_cause.max": round(float(sim.max()), 4),
        }


class ChainScore:
    """Nodes matched one to one: P/R/F1; edges between matched nodes: F1; root and impact."""

    name, version = "chain", "1"

    def __init__(self, threshold: float = MATCH_THRESHOLD) -> None:
        self.threshold = threshold

    def score(self, draft: View, truth: View, vectors: Vectors) -> Scores:
        has_both = float(
            any(n.kind is NodeKind.ROOT_CAUSE for n in draft.chain)
            and any(n.kind is NodeKind.IMPACT for n in draft.chain)
        )
        if not truth.chain:
            return {
                "chain.node_precision": None,
                "chain.node_recall": None,
                "chain.node_f1": None,
                "chain.edge_f1": None,
                "chain.has_root_and_impact": has_both,
            }
        sim = vectors.similarity([n.text for n in draft.chain], [n.text for n in truth.chain])
        pairs = match(sim, self.threshold)
        p, r, f1 = prf(len(pairs), len(draft.chain), len(truth.chain))
        to_truth = {draft.chain[d].id: truth.chain[t].id for d, t in pairs}
        truth_edges = {(n.id, target) for n in truth.chain for target in n.leads_to}
        draft_edges = [(n.id, target) for n in draft.chain for target in n.leads_to]
        hits = sum((to_truth.get(a), to_truth.get(b)) in truth_edges for a, b in draft_edges)
        _ep, _er, edge_f1 = prf(hits, len(draft_edges), len(truth_edges))
        return {
            "chain.node_precision": round(p, 4),
            "chain.node_recall": round(r, 4),
            "chain.node_f1": round(f1, 4),
            "chain.edge_f1": round(edge_f1, 4) if truth_edges else None,
            "chain.has_root_and_impact": has_both,
        }


class ItemScore:
    """Contributing factors or action items matched one to one: P/R/F1 and, over the matched
    pairs, agreement of their category (factors) or kind and priority (actions)."""

    version = "2"
    """2: the calibrated threshold (0.56) instead of 0.6."""

    def __init__(self, name: str, threshold: float = ITEM_THRESHOLD) -> None:
        self.name = name
        self.threshold = threshold

    def score(self, draft: View, truth: View, vectors: Vectors) -> Scores:
        drafted = draft.factors if self.name == "factors" else draft.actions
        reviewed = truth.factors if self.name == "factors" else truth.actions
        keys = ("category",) if self.name == "factors" else ("kind", "priority")
        names = [f"{self.name}.precision", f"{self.name}.recall", f"{self.name}.f1"]
        agreement = [f"{self.name}.{key}_agreement" for key in keys]
        if not reviewed:
            return dict.fromkeys([*names, *agreement])
        sim = vectors.similarity([i.text for i in drafted], [i.text for i in reviewed])
        pairs = match(sim, self.threshold)
        scores: Scores = dict(
            zip(
                names,
                (round(v, 4) for v in prf(len(pairs), len(drafted), len(reviewed))),
                strict=True,
            )
        )
        for key, label in zip(keys, agreement, strict=True):
            same = [getattr(drafted[d], key) == getattr(reviewed[t], key) for d, t in pairs]
            scores[label] = round(sum(same) / len(same), 4) if same else None
        return scores


class GroundingScore:
    """Share of cited ids that exist; share of suggestions citing nothing; flags per suggestion."""

    name, version = "grounding", "1"

    def score(self, draft: View, known: set[str]) -> Scores:
        exist = sum(i in known for i in draft.cited) / len(draft.cited) if draft.cited else None
        claims = draft.claims
        return {
            "grounding.cited_ids_exist": None if exist is None else round(exist, 4),
            "grounding.uncited_share": round(draft.uncited / claims, 4) if claims else None,
            "grounding.flags_per_suggestion": round(draft.flags / claims, 4) if claims else None,
        }


TEXT_EVALUATORS = (
    SummaryScore(),
    RootCauseScore(),
    ChainScore(),
    ItemScore("factors"),
    ItemScore("actions"),
)
GROUNDING = GroundingScore()
EVALUATORS: dict[str, str] = {
    **{e.name: e.version for e in TEXT_EVALUATORS},
    GROUNDING.name: GROUNDING.version,
}
"""Evaluator name → version, recorded with every result row."""


def score_case(draft: View, truth: View, embedder: Embedder, known: set[str]) -> Scores:
    """Every metric for one case."""
    vectors = Vectors(embedder)
    vectors.load(_texts(draft) + _texts(truth))
    scores: Scores = {}
    for evaluator in TEXT_EVALUATORS:
        scores.update(evaluator.score(draft, truth, vectors))
    scores.update(GROUNDING.score(draft, known))
    return scores


def _texts(view: View) -> list[str]:
    return [
        t
        for t in (
            view.summary,
            *view.root_causes,
            *(n.text for n in view.chain),
            *(f.text for f in view.factors),
            *(a.text for a in view.actions),
        )
        if t
    ]


def bootstrap_ci(
    values: Sequence[float], iterations: int = 2_000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Mean and the percentile-bootstrap (1 - alpha) interval; deterministic for a seed."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(iterations, data.size))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return round(float(data.mean()), 4), round(float(low), 4), round(float(high), 4)


def paired_bootstrap_ci(
    a: Sequence[float], b: Sequence[float], iterations: int = 2_000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of b - a over paired cases and its 95% bootstrap interval."""
    return bootstrap_ci([y - x for x, y in zip(a, b, strict=True)], iterations, seed)
