"""The SVG pictures parse, lay out in the promised order, and keep untrusted text inert."""

from __future__ import annotations

import itertools
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from api.web.diagrams import (
    causal_chain_svg,
    durations,
    fishbone_svg,
    format_duration,
    timeline_svg,
)
from rca.domain import (
    CausalNode,
    ContributingFactor,
    FactorCategory,
    NodeKind,
    PostmortemTimelineEntry,
)

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2023, 1, 24, 13, 10, tzinfo=UTC)
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
EVIL = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "\u202eevil\u2066 \u200fmore\u061c",
    '"><a href="https://evil.example/">x</a><foreignObject/>',
    "]]><!-- --><?xml?>&amp; &#x3c;svg onload=alert(1)&#x3e;",
    "url(https://evil.example/x.png) \x1b[31mred\x07\x00 bell",
]


def within(seconds: float, make: Callable[[], str]) -> str:
    """`make()`, failing (instead of hanging the run) if it takes longer than `seconds`."""
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(make()), daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert not worker.is_alive(), f"still drawing after {seconds} s"
    return result[0]


def parse(svg: str) -> ET.Element:
    """Parse and check the shell every picture shares."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    width, height = int(root.get("width", "0")), int(root.get("height", "0"))
    assert width > 0 and height > 0
    assert root.get("viewBox") == f"0 0 {width} {height}"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    assert all(int(e.get("font-size", "12")) >= 11 for e in root.iter(f"{SVG}text"))
    return root


def texts(element: ET.Element) -> list[str]:
    """The visible text of every `<text>` under `element`, line by line."""
    return ["".join(t.itertext()) for t in element.iter(f"{SVG}tspan")]


def text_box(text: ET.Element) -> tuple[float, float, float, float]:
    """Top, bottom, left and right of a one-line `<text>`, at 0.6 em per character."""
    size, x, y = (float(text.get(name, "12")) for name in ("font-size", "x", "y"))
    return y - size, y + 3, x, x + 0.6 * size * len("".join(text.itertext()))


def translate_x(group: ET.Element) -> float:
    match = re.fullmatch(r"translate\(([-\d.]+),([-\d.]+)\)", group.get("transform", ""))
    assert match, group.get("transform")
    return float(match[1])


def node(node_id: str, kind: NodeKind, *leads_to: str, text: str = "") -> CausalNode:
    return CausalNode(
        id=node_id, kind=kind, text=text or f"{kind.value} {node_id}", leads_to=[*leads_to]
    )


def nodes_by_id(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-node-id", ""): g for g in root.iter(f"{SVG}g") if g.get("data-node-id")}


def edges(root: ET.Element) -> list[tuple[str, str]]:
    found = root.iter(f"{SVG}path")
    return sorted(
        (p.get("data-source", ""), p.get("data-target", ""))
        for p in found
        if p.get("class") == "edge"
    )


def assert_inert(svg: str) -> None:
    """No active content, no outside reference, no bidi or control characters anywhere."""
    root = parse(svg)
    for element in root.iter():
        tag = element.tag.removeprefix(SVG).lower()
        assert element.tag.startswith(SVG), element.tag
        assert tag not in {"script", "image", "img", "a", "foreignobject", "iframe", "use"}
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), name
            assert "href" not in name.lower(), name
            assert "javascript:" not in value.lower(), value
            assert all(u == "url(#" for u in re.findall(r"url\(.?", value)), value
    assert not set(svg) & set(BIDI)
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", svg)
    assert "<!--" not in svg and "<?" not in svg and "<!" not in svg


# ---------------------------------------------------------------------------------------------
# Causal chain


def test_chain_columns_follow_causal_kind_order_whatever_the_input_order() -> None:
    chain = [
        node("imp", NodeKind.IMPACT),
        node("sym", NodeKind.SYMPTOM, "imp"),
        node("cau", NodeKind.CAUSE, "sym"),
        node("trg", NodeKind.TRIGGER, "cau"),
        node("cf", NodeKind.CONTRIBUTING_FACTOR, "sym"),
        node("rc1", NodeKind.ROOT_CAUSE, "trg"),
        node("rc2", NodeKind.ROOT_CAUSE, "cau"),
    ]
    root = parse(causal_chain_svg(chain))
    groups = nodes_by_id(root)
    assert set(groups) == {n.id for n in chain}
    by_kind: dict[NodeKind, list[float]] = {}
    for n in chain:
        assert groups[n.id].get("class") == f"node node-{n.kind.value}"
        by_kind.setdefault(n.kind, []).append(translate_x(groups[n.id]))
    order = [kind for kind in NodeKind if kind in by_kind]
    assert order == list(NodeKind)  # every kind present, in the enum's causal order
    for before, after in itertools.pairwise(order):
        assert max(by_kind[before]) < min(by_kind[after]), (before, after)
    assert by_kind[NodeKind.ROOT_CAUSE][0] == by_kind[NodeKind.ROOT_CAUSE][1]


def test_chain_spreads_a_chain_inside_one_kind_left_to_right() -> None:
    chain = [
        node("c3", NodeKind.CAUSE),
        node("c2", NodeKind.CAUSE, "c3"),
        node("c1", NodeKind.CAUSE, "c2"),
    ]
    groups = nodes_by_id(parse(causal_chain_svg(chain)))
    assert translate_x(groups["c1"]) < translate_x(groups["c2"]) < translate_x(groups["c3"])


def test_chain_draws_one_edge_per_known_link_and_none_for_unknown_ids() -> None:
    chain = [
        node("n1", NodeKind.ROOT_CAUSE, "n3", "ghost", "n5"),
        node("n2", NodeKind.CONTRIBUTING_FACTOR, "n3", "n3"),
        node("n3", NodeKind.TRIGGER, "n4", "missing"),
        node("n4", NodeKind.SYMPTOM, "n5"),
        node("n5", NodeKind.IMPACT),
    ]
    root = parse(causal_chain_svg(chain))
    assert edges(root) == [("n1", "n3"), ("n1", "n5"), ("n2", "n3"), ("n3", "n4"), ("n4", "n5")]
    marker = root.find(f"{SVG}defs/{SVG}marker")
    assert marker is not None and marker.get("id")
    assert {p.get("marker-end") for p in root.iter(f"{SVG}path") if p.get("class") == "edge"} == {
        f"url(#{marker.get('id')})"
    }
    assert "ghost" not in ET.tostring(root, encoding="unicode")


def test_chain_with_cycles_and_self_links_terminates_and_draws_every_link() -> None:
    chain = [
        node("a", NodeKind.CAUSE, "b", "a"),
        node("b", NodeKind.CAUSE, "c"),
        node("c", NodeKind.CAUSE, "a", "s"),
        node("s", NodeKind.SYMPTOM, "a"),
    ]
    root = parse(within(10, lambda: causal_chain_svg(chain)))
    assert edges(root) == [("a", "b"), ("b", "c"), ("c", "a"), ("c", "s"), ("s", "a")]
    dashed = [p for p in root.iter(f"{SVG}path") if p.get("stroke-dasharray")]
    assert {(p.get("data-source"), p.get("data-target")) for p in dashed} >= {("s", "a")}


def test_chain_truncates_long_text_and_keeps_the_full_text_for_hover() -> None:
    long_text = "Connection pool exhausted " * 12 + "END"
    root = parse(causal_chain_svg([node("n1", NodeKind.TRIGGER, text=long_text)]))
    group = nodes_by_id(root)["n1"]
    title = group.find(f"{SVG}title")
    assert title is not None and title.text == long_text.strip()
    visible = texts(group)
    assert visible[0] == "TRIGGER"
    assert 2 <= len(visible) - 1 <= 4
    assert visible[-1].endswith("…")
    assert "END" not in " ".join(visible)


def test_huge_text_is_cut_quickly_and_kept_whole_for_hover() -> None:
    word = "x" * 4_000  # one 'word' as long as a Line may be
    chain = [node("n1", NodeKind.CAUSE, text=word)]
    factor = ContributingFactor(text=word, category=FactorCategory.PEOPLE)
    pictures = [
        within(5, lambda: causal_chain_svg(chain)),
        within(5, lambda: fishbone_svg([factor], effect="word " * 20_000)),
        within(5, lambda: timeline_svg([PostmortemTimelineEntry(at=T0, text=word)], started_at=T0)),
    ]
    for svg in pictures:
        root = parse(svg)
        assert all(len(line) < 60 for line in texts(root)), max(texts(root), key=len)
        assert any(word in (t.text or "") for t in root.iter(f"{SVG}title"))


def test_empty_chain_says_so() -> None:
    root = parse(causal_chain_svg([]))
    assert texts(root) == ["No causal chain"]


# ---------------------------------------------------------------------------------------------
# Fishbone


def test_fishbone_has_exactly_the_categories_with_factors() -> None:
    factors = [
        ContributingFactor(
            text="Canary traffic held few old clients", category=FactorCategory.TECHNOLOGY
        ),
        ContributingFactor(
            text="Telemetry arrived in 30-minute batches", category=FactorCategory.MONITORING
        ),
        ContributingFactor(
            text="Mobile API exempt from versioning", category=FactorCategory.PROCESS
        ),
        ContributingFactor(
            text="No contract tests for old app versions", category=FactorCategory.PROCESS
        ),
    ]
    root = parse(fishbone_svg(factors, effect="61% of mobile checkouts failed for 52 minutes"))
    bones = [g for g in root.iter(f"{SVG}g") if g.get("data-category")]
    assert sorted(g.get("data-category", "") for g in bones) == [
        "monitoring",
        "process",
        "technology",
    ]
    process = next(g for g in bones if g.get("data-category") == "process")
    hover = [t.text for t in process.iter(f"{SVG}title")]
    assert hover == [factors[2].text, factors[3].text]
    assert "Process" in texts(process)
    effect = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "effect")
    assert " ".join(texts(effect)) == "61% of mobile checkouts failed for 52 minutes"


def test_fishbone_bones_alternate_above_and_below_the_spine() -> None:
    factors = [ContributingFactor(text=f"factor {c.value}", category=c) for c in FactorCategory]
    root = parse(fishbone_svg(factors, effect="Outage"))
    ends = []
    for bone in (g for g in root.iter(f"{SVG}g") if g.get("data-category")):
        line = bone.find(f"{SVG}line")
        assert line is not None
        ends.append(float(line.get("y2", "0")) < 0)
    assert ends == [True, False] * (len(FactorCategory) // 2)


def test_empty_fishbone_says_so() -> None:
    root = parse(fishbone_svg([], effect="Outage"))
    assert texts(root) == ["No contributing factors"]


# ---------------------------------------------------------------------------------------------
# Timeline and durations


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(0), "0 s"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(seconds=59.9), "59 s"),
        (timedelta(seconds=60), "1 min"),
        (timedelta(minutes=12, seconds=40), "12 min"),
        (timedelta(hours=2, minutes=5), "2 h 05 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(hours=23, minutes=59, seconds=59), "23 h 59 min"),
        (timedelta(days=1, hours=3, minutes=59), "1 d 3 h"),
        (timedelta(days=2), "2 d"),
        (-timedelta(minutes=5), "-5 min"),
    ],
)
def test_format_duration(delta: timedelta, expected: str) -> None:
    assert format_duration(delta) == expected


def test_durations_are_measured_from_the_start_and_skip_unknown_moments() -> None:
    assert durations(
        T0,
        T0 + timedelta(minutes=34),
        T0 + timedelta(minutes=52),
        T0 + timedelta(hours=3, minutes=20),
    ) == [
        ("time to detect", timedelta(minutes=34)),
        ("time to mitigate", timedelta(minutes=52)),
        ("time to resolve", timedelta(hours=3, minutes=20)),
    ]
    assert durations(T0, resolved_at=T0 + timedelta(days=1)) == [
        ("time to resolve", timedelta(days=1))
    ]
    assert durations(T0) == []


def example_timeline() -> list[PostmortemTimelineEntry]:
    stamps = ["12:48", "13:08", "13:10", "13:44", "13:49", "13:55", "14:02"]
    return [
        PostmortemTimelineEntry(
            at=datetime.fromisoformat(f"2023-01-24T{hhmm}:00+00:00"),
            text=f"Event at {hhmm}: something happened to checkout-api and its rollout",
        )
        for hhmm in stamps
    ]


def test_timeline_marks_every_entry_moment_and_duration() -> None:
    entries = example_timeline()
    svg = timeline_svg(
        entries[::-1],
        started_at=T0,
        detected_at=T0 + timedelta(minutes=34),
        mitigated_at=T0 + timedelta(minutes=52),
        resolved_at=T0 + timedelta(hours=3, minutes=20),
    )
    root = parse(svg)
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "entry"]
    assert len(groups) == len(entries)
    hover = [g.find(f"{SVG}title") for g in groups]
    assert [t.text for t in hover if t is not None] == [
        f"{e.at:%H:%M} UTC: {e.text}" for e in entries
    ]
    dots = [float(c.get("cx", "0")) for g in groups for c in g.iter(f"{SVG}circle")]
    assert dots == sorted(dots) and dots[0] < dots[-1]
    classes = {g.get("class") for g in root.iter(f"{SVG}g")}
    assert {"moment moment-started", "moment moment-detected"} <= classes
    assert {"moment moment-mitigated", "moment moment-resolved"} <= classes
    labels = [" ".join(texts(g)) for g in root.iter(f"{SVG}g") if g.get("class") == "duration"]
    assert labels == [
        "Time to detect: 34 min",
        "Time to mitigate: 52 min",
        "Time to resolve: 3 h 20 min",
    ]
    assert "Started 13:10" in texts(root) and "Resolved 16:30" in texts(root)
    assert sum(len(texts(g)) > 0 for g in groups) >= 3  # short labels for a few entries


def test_timeline_labels_do_not_overlap() -> None:
    entries = example_timeline() * 3
    svg = timeline_svg(entries, started_at=T0, detected_at=T0 + timedelta(minutes=34))
    root = parse(svg)
    boxes = [text_box(t) for t in root.iter(f"{SVG}text")]
    for i, (top, bottom, left, right) in enumerate(boxes):
        for other_top, other_bottom, other_left, other_right in boxes[i + 1 :]:
            if top < other_bottom and other_top < bottom:
                assert right <= other_left or other_right <= left, (boxes[i], other_left)


def test_timeline_leader_lines_do_not_run_through_other_labels() -> None:
    root = parse(timeline_svg(example_timeline() * 2, started_at=T0))
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "entry"]
    boxes = [(i, *text_box(t)) for i, g in enumerate(groups) for t in g.iter(f"{SVG}text")]
    leaders = [(i, line) for i, g in enumerate(groups) for line in g.iter(f"{SVG}line")]
    assert len(leaders) >= 4
    for i, line in leaders:
        x = float(line.get("x1", "0"))
        low, high = sorted((float(line.get("y1", "0")), float(line.get("y2", "0"))))
        for j, top, bottom, left, right in boxes:
            if j != i and top < high and low < bottom:
                assert not left - 2 <= x <= right + 2, (x, left, right)


def test_timeline_without_entries_still_shows_the_moments() -> None:
    root = parse(timeline_svg([], started_at=T0))
    assert "No timeline entries" in texts(root)
    assert any(g.get("class") == "moment moment-started" for g in root.iter(f"{SVG}g"))
    assert not [g for g in root.iter(f"{SVG}g") if g.get("class") == "duration"]


# ---------------------------------------------------------------------------------------------
# Untrusted text


@pytest.mark.parametrize("evil", EVIL)
def test_untrusted_text_is_escaped_and_stripped_everywhere(evil: str) -> None:
    chain = [
        CausalNode(id="n1", kind=NodeKind.ROOT_CAUSE, text=evil, leads_to=["n2"]),
        CausalNode(id="n2", kind=NodeKind.IMPACT, text=f"x {evil} y"),
    ]
    factor = ContributingFactor(text=evil, category=FactorCategory.PEOPLE)
    entry = PostmortemTimelineEntry(at=T0, text=evil)
    pictures = [
        causal_chain_svg(chain, title=evil),
        fishbone_svg([factor], effect=evil),
        timeline_svg([entry], started_at=T0, resolved_at=T0 + timedelta(minutes=3)),
    ]
    for svg in pictures:
        assert_inert(svg)
    # The text is shown as text, not dropped: the hover titles carry it, minus the controls.
    plain = " ".join(
        re.sub(r"[\x00-\x1f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", "", evil).split()
    )
    for svg in pictures:
        titles = [t.text or "" for t in parse(svg).iter(f"{SVG}title")]
        assert any(plain in title for title in titles), titles


def test_the_same_input_gives_the_same_picture() -> None:
    chain = [node("a", NodeKind.TRIGGER, "b"), node("b", NodeKind.IMPACT)]
    assert causal_chain_svg(chain) == causal_chain_svg(list(chain))
    other = causal_chain_svg(
        [node("a", NodeKind.TRIGGER, "b", text="other"), node("b", NodeKind.IMPACT)]
    )
    marker_ids = re.findall(r'marker id="([^"]+)"', causal_chain_svg(chain) + other)
    assert len(set(marker_ids)) == 2  # two different charts on one page do not share the marker id
