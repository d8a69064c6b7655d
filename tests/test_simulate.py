"""`imier simulate`: strict loading, determinism, and the one arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from imier.consensus import tally_proposal
from imier.simulate import ScenarioError, load, simulate

EXAMPLE = Path(__file__).parent / "scenarios" / "01_simulate_md_example.json"


def base(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "bodies": {"a": {"kind": "community", "members": 4}},
        "proposal": {"body": "a", "title": "t", "text": "x"},
        "rounds": [{"votes": {"a": {"yes": 4}}}],
    }
    doc.update(over)
    return doc


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (base(extra=1), "extra"),
        ({"bodies": {"a": {"kind": "community", "members": 4}}}, "proposal"),
        (base(bodies={"a": {"kind": "commune", "members": 4}}), "bodies.a.kind"),
        (base(bodies={"a": {"kind": "community", "members": 0}}), "bodies.a.members"),
        (base(bodies={"a": {"kind": "community", "members": 4, "parts": ["a"]}}), "bodies.a.parts"),
        (base(bodies={"a": {"kind": "community"}}), "bodies.a.members"),
        (base(bodies={"a": {"kind": "community", "members": 4, "charter": {"colour": "red"}}}),
         "bodies.a.charter"),
        (base(bodies={"a": {"kind": "community", "members": 4, "charter": {"vote_window": "0"}}}),
         "bodies.a.charter.vote_window"),
        (base(bodies={"a": {"kind": "community", "members": 4}, "m": {"kind": "municipality", "parts": ["zz"]}}),
         "bodies.m.parts[0]"),
        (base(rounds=[{"votes": {"a": {"yes": -1}}}]), "rounds[0].votes.a.yes"),
        (base(rounds=[{"votes": {"a": {"yes": 1, "maybe": 1}}}]), "rounds[0].votes.a.maybe"),
        (base(rounds=[{"votes": {"a": {"no_minor": 1, "categories": {"Cost": 1}}}}]),
         "rounds[0].votes.a.categories.Cost"),
        (base(rounds=[{"votes": {"a": {"no_minor": 1, "categories": {"cost": 2}}}}]),
         "rounds[0].votes.a.categories"),
        (base(rounds=[{}, {"amendments": [{"text": "y", "votes": {"a": {"yes": 5}}}]}]),
         "rounds[1].amendments[0].votes.a"),
        (base(rounds=[{}, {}, {}, {}]), "rounds"),
        (base(proposal={"body": "a", "title": "", "text": "x"}), "proposal.title"),
        (base(contention={"zz": {"to_no": 1}}), "contention.zz"),
    ],
)
def test_malformed_scenarios_name_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        load(doc)
    assert exc.value.field == field, str(exc.value)


def test_same_scenario_same_events_and_the_one_arithmetic() -> None:
    sc = load(json.loads(EXAMPLE.read_text()))
    one, two = simulate(sc), simulate(sc)
    ids = [e.id for e in one.store.all_events()]
    assert ids == [e.id for e in two.store.all_events()]
    # The simulation's answer is the tally of its own events, nothing else.
    as_of = one.result.as_of
    again = tally_proposal(one.store.all_events(), one.result.id, as_of)
    assert again == one.result
    assert one.json() == json.loads(EXAMPLE.read_text())["expect"]


def test_human_output_says_why(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from imier.cli.main import main

    rc = main(["--home", str(tmp_path), "simulate", str(EXAMPLE)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "carried in round 2 with 2/2 ≥ 9/10; contention closed with 2/2" in out
    assert "Round 1" in out and "Round 2 amendments" in out and "cost (minor, 2)" in out


def test_unreadable_and_non_json_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imier.cli.main import main

    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    assert main(["--home", str(tmp_path), "simulate", "--json", str(bad)]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and "scenario: not JSON" in cap.err
    assert main(["--home", str(tmp_path), "simulate", str(tmp_path / "missing.json")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_simulate_as_a_subprocess_prints_one_json_document(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "imier", "--home", str(tmp_path), "simulate", "--json",
                        str(EXAMPLE)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == json.loads(EXAMPLE.read_text())["expect"]


def test_window_too_short_for_the_votes_is_refused() -> None:
    doc = base(bodies={"a": {"kind": "community", "members": 5000, "charter": {"vote_window": "1"}}},
               rounds=[{"votes": {"a": {"yes": 2000}}}])
    with pytest.raises(ScenarioError) as exc:
        simulate(load(doc))
    assert exc.value.field == "rounds[0].votes"


def test_loader_refuses_odd_json_with_a_field(tmp_path: Path) -> None:
    from imier.simulate import load_file

    with pytest.raises(ScenarioError) as exc:
        load(base(proposal={"body": [], "title": "t", "text": "x"}))
    assert exc.value.field == "proposal.body"
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b"\x80{}")
    with pytest.raises(ScenarioError) as exc:
        load_file(bad)
    assert exc.value.field == "scenario"
