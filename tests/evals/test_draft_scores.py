"""Sanity of the draft metrics: self-score is the top, shuffled and unrelated content scores
lower, small hand-checked examples give the expected numbers."""

from __future__ import annotations

import numpy as np
import pytest

from evals.draft_eval import load_cases
from evals.draft_scores import (
    ChainScore,
    Vectors,
    View,
    bootstrap_ci,
    match,
    paired_bootstrap_ci,
    prf,
    score_case,
)
from rca.domain import ActionItem, CausalNode, NodeKind
from rca.testing import FakeEmbedder
from tests.evals.test_eval_harness import CASES

EMBEDDER = FakeEmbedder(dimension=256)


def views() -> list[View]:
    return [View.of_postmortem(case.reviewed) for case in load_cases(CASES)]


def test_a_reviewed_postmortem_against_itself_gets_the_top_score_everywhere() -> None:
    for view in views():
        scores = score_case(view, view, EMBEDDER, set())
        for name, value in scores.items():
            if name.startswith("grounding") or value is None:
                continue
            assert value == pytest.approx(1.0), name


def test_another_incident_s_analysis_scores_clearly_lower() -> None:
    first, second, third = views()
    own = score_case(first, first, EMBEDDER, set())
    other = score_case(second, first, EMBEDDER, set())
    for name in ("summary.rouge_l", "root_cause.best_match", "chain.node_f1", "actions.f1"):
        assert (other[name] or 0.0) < 0.5 * (own[name] or 1.0), name
    # Actions of a third case with the first case's causes: the actions score drops, the
    # root-cause score does not.
    mixed = View(
        summary=first.summary,
        root_causes=first.root_causes,
        chain=first.chain,
        factors=first.factors,
        actions=third.actions,
    )
    scores = score_case(mixed, first, EMBEDDER, set())
    assert scores["root_cause.best_match"] == pytest.approx(1.0)
    assert (scores["actions.f1"] or 0.0) < 0.5


def node(ident: str, kind: NodeKind, text: str, *leads_to: str) -> CausalNode:
    return CausalNode(id=ident, kind=kind, text=text, leads_to=list(leads_to))


def test_chain_scores_by_hand() -> None:
    truth_chain = (
        node("a", NodeKind.ROOT_CAUSE, "pool sized from cpu limit", "b"),
        node("b", NodeKind.CAUSE, "requests wait for connections", "c"),
        node("c", NodeKind.IMPACT, "checkout requests fail"),
    )
    truth = View("", (), truth_chain, (), ())
    # Two drafted nodes, both the same texts as reviewed ones: P = 1, R = 2/3, F1 = 0.8; the
    # drafted edge root -> impact is not a reviewed edge (reviewed: a->b, b->c), so edge F1 = 0.
    drafted = View(
        "",
        (),
        (
            node("r", NodeKind.ROOT_CAUSE, "pool sized from cpu limit", "i"),
            node("i", NodeKind.IMPACT, "checkout requests fail"),
        ),
        (),
        (),
    )
    vectors = Vectors(EMBEDDER)
    vectors.load([n.text for n in truth_chain])
    scores = ChainScore().score(drafted, truth, vectors)
    assert scores["chain.node_precision"] == 1.0
    assert scores["chain.node_recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["chain.node_f1"] == pytest.approx(0.8)
    assert scores["chain.edge_f1"] == 0.0
    assert scores["chain.has_root_and_impact"] == 1.0
    # Reversed edges between the same nodes score zero on edges, full on nodes.
    reversed_chain = tuple(
        node(n.id, n.kind, n.text, *[p.id for p in truth_chain if n.id in p.leads_to])
        for n in truth_chain
    )
    flipped = ChainScore().score(View("", (), reversed_chain, (), ()), truth, vectors)
    assert flipped["chain.node_f1"] == 1.0 and flipped["chain.edge_f1"] == 0.0


def test_matching_is_one_to_one_and_thresholded() -> None:
    sim = np.array([[0.9, 0.8], [0.85, 0.1], [0.2, 0.3]])
    assert sorted(match(sim, 0.6)) == [(0, 1), (1, 0)]  # the best total, each used once
    assert match(sim, 0.95) == []
    # A sub-threshold pair must not push a valid one out of the assignment.
    assert match(np.array([[0.61, 0.59], [0.59, 0.0]]), 0.6) == [(0, 0)]
    assert prf(2, 3, 4) == pytest.approx((2 / 3, 0.5, 4 / 7))


def test_actions_agreement_and_missing_reviewed_content_is_not_applicable() -> None:
    action = ActionItem(text="alert on pool wait time", kind="detect", priority="must")
    other = ActionItem(text="alert on pool wait time", kind="prevent", priority="must")
    truth = View("s", ("c",), (), (), (action,))
    scores = score_case(View("s", ("c",), (), (), (other,)), truth, EMBEDDER, set())
    assert scores["actions.f1"] == 1.0
    assert scores["actions.kind_agreement"] == 0.0 and scores["actions.priority_agreement"] == 1.0
    assert scores["chain.node_f1"] is None and scores["factors.f1"] is None


def test_grounding_counts_cited_ids_that_exist() -> None:
    view = View("s", (), (), (), (), cited=("a1", "l9", "a1", "pm-1"), claims=4, uncited=1, flags=2)
    scores = score_case(view, View("s", (), (), (), ()), EMBEDDER, {"a1", "pm-1"})
    assert scores["grounding.cited_ids_exist"] == 0.75
    assert scores["grounding.uncited_share"] == 0.25
    assert scores["grounding.flags_per_suggestion"] == 0.5


def test_bootstrap_intervals() -> None:
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5, 0.5)
    assert paired_bootstrap_ci([0.1, 0.2], [0.1, 0.2]) == (0.0, 0.0, 0.0)
    mean, low, high = bootstrap_ci([0.0, 1.0] * 10)
    assert mean == 0.5 and 0.2 < low < 0.4 and 0.6 < high < 0.8  # about 0.5 +- 1.96 * 0.11
    assert bootstrap_ci([0.2, 0.9, 0.4], seed=3) == bootstrap_ci([0.2, 0.9, 0.4], seed=3)
