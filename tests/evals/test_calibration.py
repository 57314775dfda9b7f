"""Calibrating the item-matching threshold against hand-labelled pairs."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from evals.calibration import (
    Pair,
    calibrate,
    format_calibration,
    load_pairs,
    propose_pairs,
    sweep,
    write_pairs,
)
from evals.draft_eval import EvalCase, load_cases
from evals.draft_scores import ITEM_THRESHOLD
from rca.domain import (
    ActionItem,
    ActionKind,
    Draft,
    Priority,
    Suggestion,
    SuggestionSection,
)
from rca.errors import InvalidArgument, InvalidInput
from rca.ports import InputType
from rca.testing import FakeEmbedder
from tests.evals.test_eval_harness import CASES, OWN_CASES
from tests.support import ROOT, run

PAIRS = ROOT / "evals" / "calibration" / "pairs.jsonl"


class AngleEmbedder:
    """Texts "cos=0.72" embed at that cosine from every other text: a unit vector at angle
    acos(x) from the first axis; any other text embeds on the first axis."""

    model_id, dimension = "angle", 2

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        del input_type
        out = []
        for text in texts:
            found = re.search(r"cos=([0-9.]+)", text)
            angle = math.acos(float(found.group(1))) if found else 0.0
            out.append([math.cos(angle), math.sin(angle)])
        return out


def one_case() -> dict[str, EvalCase]:
    case = load_cases(CASES)[0]
    return {case.id: case}


def test_the_sweep_counts_agreement_kappa_precision_and_recall_by_hand() -> None:
    sims = np.asarray([0.9, 0.7, 0.5, 0.3])
    labels = np.asarray([True, True, False, False])
    at_06, at_08 = sweep(sims, labels, [0.6, 0.8])
    assert (at_06.agreement, at_06.kappa, at_06.precision, at_06.recall) == (1.0, 1.0, 1.0, 1.0)
    # At 0.8 only the first pair matches: 3 of 4 agree; chance agreement 0.5, kappa 0.5.
    assert (at_08.agreement, at_08.kappa, at_08.precision, at_08.recall) == (0.75, 0.5, 1.0, 0.5)


def test_calibration_picks_the_middle_of_the_best_plateau() -> None:
    cases = one_case()
    (case_id,) = cases
    labelled = [(0.81, True), (0.74, True), (0.66, True), (0.52, False), (0.41, False)]
    pairs = [Pair("action", case_id, 0, f"cos={c}", same) for c, same in labelled]
    pairs.append(Pair("action", case_id, 99, "cos=0.9", True))  # no such reviewed item
    result = calibrate(pairs, cases, AngleEmbedder())
    # Every threshold in (0.52, 0.66] agrees perfectly; the chosen one is their middle.
    perfect = [r.threshold for r in result.rows if r.agreement == 1.0]
    assert perfect[0] == 0.53 and perfect[-1] == 0.66
    assert result.best.threshold == perfect[len(perfect) // 2] == 0.60
    assert (result.pairs, result.same, result.unresolved) == (5, 3, 1)
    table = format_calibration(result)
    assert "| 0.60 **chosen** | 1.000 | 1.000 |" in table


def test_too_few_resolvable_pairs_is_an_error_saying_what_to_do() -> None:
    with pytest.raises(InvalidArgument, match="label more pairs"):
        calibrate([Pair("factor", "no-such-case", 0, "x", True)], one_case(), AngleEmbedder())


def test_malformed_pair_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    good = json.dumps({"section": "action", "case": "c", "index": 0, "drafted": "x", "same": True})
    for bad in (
        "{not json",
        json.dumps({"section": "lesson", "case": "c", "index": 0, "drafted": "x"}),
        json.dumps({"section": "action", "case": "c", "index": 0, "drafted": "x", "same": "yes"}),
        json.dumps({"section": "action", "case": "c", "drafted": "x"}),
    ):
        path.write_text(good + "\n" + bad + "\n")
        with pytest.raises(InvalidInput) as err:
            load_pairs(path)
        assert f"{path}:2" in str(err.value.problems[0])


def test_proposed_pairs_round_trip_unlabelled_and_are_each_items_nearest() -> None:
    case = load_cases(CASES)[0]
    reviewed = [a.text for a in case.reviewed.action_items]
    actions = [reviewed[1], "Something unrelated entirely"]
    draft = Draft(
        id="d1",
        incident_id=case.incident.id,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        model="m",
        prompt_version="p",
        suggestions=[
            Suggestion(
                id=f"s{n}",
                section=SuggestionSection.ACTION_ITEM,
                content=ActionItem(text=text, kind=ActionKind.PREVENT, priority=Priority.MUST),
                confidence=0.5,
            )
            for n, text in enumerate(actions)
        ],
    )
    proposed = propose_pairs([case], {case.id: draft}, FakeEmbedder(256), nearest=2)
    assert all(p.same is None and p.section == "action" for p in proposed)
    assert len(proposed) == 4
    assert Pair("action", case.id, 1, reviewed[1]) in proposed  # its own text is nearest


def test_the_shipped_threshold_is_the_calibrated_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The labelled pairs in the repository, calibrated with the embedder the scores use,
    give the threshold `ItemScore` applies; enough of them resolve against our own cases."""
    pairs = load_pairs(PAIRS)
    assert all(p.same is not None for p in pairs)
    own = {c.id for c in load_cases(OWN_CASES)}
    assert sum(p.case in own for p in pairs) >= 80
    code, out, err = run(
        tmp_path / "data", "eval", "calibrate", "--pairs", str(PAIRS), "--cases", str(OWN_CASES),
        capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    chosen = re.search(r"chosen threshold ([0-9.]+): agreement ([0-9.]+)", out)
    assert chosen is not None, out
    assert float(chosen.group(1)) == pytest.approx(ITEM_THRESHOLD, abs=0.005)
    assert float(chosen.group(2)) >= 0.75


def test_the_cli_refuses_a_run_without_drafts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "run"
    empty.mkdir()
    code, _out, err = run(
        tmp_path / "data", "eval", "pairs", "--cases", str(CASES), "--run", str(empty),
        "--out", str(tmp_path / "p.jsonl"), capsys=capsys,
    )  # fmt: skip
    assert code != 0 and "no drafts/" in err
    write_pairs(tmp_path / "p.jsonl", [Pair("action", "c", 0, "x")])
    assert load_pairs(tmp_path / "p.jsonl") == [Pair("action", "c", 0, "x")]
