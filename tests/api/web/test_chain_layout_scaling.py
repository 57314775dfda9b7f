"""The causal-chain picture is laid out in about linear time (issue 16, finding 8): a chain far
over the import cap (called directly, past the cap) is drawn quickly, and four times the nodes
take about four times as long, not sixteen."""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable

import pytest

from api.web.diagrams import causal_chain_svg
from rca.domain import CausalNode, NodeKind
from rca.domain.postmortem import MAX_CHAIN_NODES

Shape = Callable[[int], list[CausalNode]]


def one_long_chain(n: int) -> list[CausalNode]:
    """Every node a cause leading to the next: a column per node (the finding's import)."""
    return [
        CausalNode(
            id=f"n{i}",
            kind=NodeKind.CAUSE,
            text=f"step {i} of the failure",
            leads_to=[f"n{i + 1}"] if i + 1 < n else [],
        )
        for i in range(n)
    ]


def layered(n: int) -> list[CausalNode]:
    """Every kind in turn, each node leading to two later ones, some far ahead."""
    rng = random.Random(n)
    kinds = list(NodeKind)
    nodes = []
    for i in range(n):
        targets = sorted({rng.randrange(i + 1, n) for _ in range(2)}) if i + 1 < n else []
        kind = kinds[min(len(kinds) - 1, i * len(kinds) // n)]
        leads_to = [f"n{t}" for t in targets]
        nodes.append(CausalNode(id=f"n{i}", kind=kind, text=f"node {i} text", leads_to=leads_to))
    return nodes


def cpu_seconds(nodes: list[CausalNode], runs: int = 3) -> float:
    """The best of `runs` layouts, in CPU time (other processes on the machine count less)."""
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.process_time()
        causal_chain_svg(nodes)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize("shape", [one_long_chain, layered])
def test_a_chain_ten_times_the_cap_is_drawn_within_seconds(shape: Shape) -> None:
    nodes = shape(3_000)
    assert len(nodes) >= 10 * MAX_CHAIN_NODES
    assert cpu_seconds(nodes, runs=1) < 1.5  # about 0.25-0.4 s here; 2.3-2.7 s before


@pytest.mark.parametrize("shape", [one_long_chain, layered])
def test_four_times_the_nodes_take_about_four_times_as_long(shape: Shape) -> None:
    small, large = cpu_seconds(shape(1_000)), cpu_seconds(shape(4_000))
    assert large / small < 9, (small, large)  # linear: about 4; quadratic: about 16
