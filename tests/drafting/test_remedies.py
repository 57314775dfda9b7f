"""The remediation library: it loads, says what is wrong with a bad one, detects failure modes
from causes more than from evidence, and stays linear on hostile text."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from rca.drafting.remedies import (
    CAUSE_WEIGHT,
    EVIDENCE_CAP,
    LIBRARY,
    default_library,
    detect,
    load_library,
)
from rca.errors import ConfigurationError

_PLACEHOLDER = re.compile(r"\{([^}]*)\}")


def test_the_shipped_library_is_valid_and_covers_the_usual_failure_modes() -> None:
    library = load_library()
    assert library.version >= 1
    ids = {m.id for m in library.modes}
    assert len(ids) == len(library.modes) >= 20
    for wanted in (
        "unstaged-rollout",
        "missing-limit",
        "retry-storm",
        "thundering-herd",
        "unguarded-command",
        "single-point-of-failure",
        "hidden-dependency",
        "expiry",
        "capacity-headroom",
        "untested-recovery",
        "time-handling",
        "resource-leak",
        "queue-growth",
        "unsafe-deletion",
        "late-alerting",
        "slow-rollback",
    ):
        assert wanted in ids
    for mode in library.modes:
        texts = [
            mode.factor.text,
            *(a.text for a in mode.actions),
            *(a.owner for a in mode.actions),
        ]
        for text in texts:
            assert set(_PLACEHOLDER.findall(text)) <= {"service", "team"}, (mode.id, text)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("version: 1\nmodes: [\n", "remedies.yaml"),
        ("version: 1\nmodes: []\n", "modes"),
        (
            "version: 1\nmodes:\n"
            + "".join(
                "  - {id: same, name: twice, cues: ['x'], factor: {category: process, "
                "text: 'a factor text'}, actions: [{kind: prevent, priority: must, owner: sre, "
                "text: 'do the thing well'}]}\n"
                for _ in range(2)
            ),
            "unique",
        ),
        (
            "version: 1\nmodes:\n  - {id: bad-cue, name: bad cue, cues: ['(unclosed'], "
            "factor: {category: process, text: 'a factor text'}, actions: [{kind: prevent, "
            "priority: must, owner: sre, text: 'do the thing well'}]}\n",
            "not a regular expression",
        ),
        (
            "version: 1\nmodes:\n  - {id: bad-kind, name: bad kind, cues: ['x'], "
            "factor: {category: process, text: 'a factor text'}, actions: [{kind: pray, "
            "priority: must, owner: sre, text: 'do the thing well'}]}\n",
            "kind",
        ),
    ],
)
def test_a_bad_library_is_refused_naming_the_file(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "remedies.yaml"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as err:
        load_library(path)
    assert str(path) in str(err.value) and reason in str(err.value)


def test_a_cue_in_a_root_cause_counts_more_than_in_the_evidence() -> None:
    found = detect(
        [("The partner certificate expired because renewal failed", ["c1"])],
        None,
        {"l1": "queue depth grew steadily behind the consumer", "l2": "unrelated line"},
    )
    by_id = {d.mode.id: d for d in found}
    assert found[0].mode.id == "expiry"
    assert by_id["expiry"].score >= CAUSE_WEIGHT and by_id["expiry"].cause == 0
    assert by_id["expiry"].evidence_ids[0] == "c1"
    assert by_id["queue-growth"].cause is None
    assert by_id["queue-growth"].score <= EVIDENCE_CAP
    assert by_id["queue-growth"].evidence_ids == ["l1"]


def test_nothing_detected_in_text_without_cues() -> None:
    assert detect([("The sky was blue", ["c1"])], None, {"l1": "hello"}) == []


@pytest.mark.parametrize(
    ("text", "detected"),
    [
        ("could the DNS change be involved? no, names resolve fine", False),
        ("Players admitted gradually via DNS steering in 10% steps", False),
        ("Escalated to DNS engineering", False),
        ("dial tcp: lookup orders-db on 10.0.0.10:53: no such host", True),
        ("DNS lookups from the new node pool time out after 5 s", True),
        ("could not resolve api-gateway.prod.svc.cluster.local", True),
    ],
)
def test_name_resolution_is_detected_by_a_failure_not_by_the_topic(
    text: str, detected: bool
) -> None:
    """A mode's cues detect its failure; naming the subject (DNS) is not a failure of it."""
    found = {d.mode.id for d in detect([], None, {"l1": text})}
    assert ("name-resolution" in found) is detected


def test_evidence_alone_cannot_outvote_a_cause() -> None:
    evidence = {f"l{i}": "retry storm: clients retried immediately, no backoff" for i in range(500)}
    found = detect([("The pool had no limit on connections", ["c1"])], None, evidence)
    by_id = {d.mode.id: d for d in found}
    assert by_id["retry-storm"].score <= EVIDENCE_CAP < by_id["missing-limit"].score
    assert len(by_id["retry-storm"].evidence_ids) <= 2 * len(by_id["retry-storm"].mode.cues)


@pytest.mark.parametrize(
    "hostile",
    [
        "no " * 40_000,
        "a." * 60_000,
        "retry " * 25_000,
        "certificate " * 12_000 + "x",
        "{" * 100_000,
    ],
)
def test_detection_stays_linear_on_100k_character_lines(hostile: str) -> None:
    """Four times the text costs about four times the time, not sixteen (bounds generous for
    a shared two-core machine)."""
    default_library()  # loaded and compiled outside the measurement
    timings = []
    for size in (25_000, 100_000):
        text = hostile[:size]
        started = time.perf_counter()
        detect([(text, ["c1"])], (text, ["t1"]), {"l1": text, "l2": text})
        timings.append(time.perf_counter() - started)
    small, large = timings
    assert large < 20.0, f"{large:.2f} s for {len(hostile)} characters"
    assert large < 10 * max(small, 0.1), f"{small:.3f} s -> {large:.3f} s: super-linear"


def test_the_library_file_is_shipped_beside_its_loader() -> None:
    assert LIBRARY.name == "remedies.yaml" and LIBRARY.is_file()
