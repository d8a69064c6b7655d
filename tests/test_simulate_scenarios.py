"""The scenario suite: every tests/scenarios/*.json through the real `imier simulate --json`.

Each file is a docs/scenarios.md scenario plus two keys simulate reads past:
``comment`` (one line: what it checks) and ``expect`` (the hand-computed
answer). ``expect`` is matched partially (every key given must be equal;
lists must have the same length) except for the files in ``EXACT``, whose
whole output is given. ``{"error": FIELD}`` expects a refusal naming FIELD,
a non-zero exit and nothing on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imier.cli.main import main

HERE = Path(__file__).parent / "scenarios"
FILES = sorted(HERE.glob("*.json"))
EXACT = {"01_simulate_md_example", "06_no_votes_at_all"}


def matches(expect: Any, got: Any, where: str = "") -> list[str]:
    if isinstance(expect, dict):
        if not isinstance(got, dict):
            return [f"{where}: expected an object, got {got!r}"]
        out: list[str] = []
        for k, v in expect.items():
            if k not in got:
                out.append(f"{where}.{k}: missing")
            else:
                out += matches(v, got[k], f"{where}.{k}")
        return out
    if isinstance(expect, list):
        if not isinstance(got, list) or len(got) != len(expect):
            return [f"{where}: expected {len(expect)} items, got {got!r}"]
        return [m for i, (e, g) in enumerate(zip(expect, got, strict=True))
                for m in matches(e, g, f"{where}[{i}]")]
    return [] if expect == got else [f"{where}: expected {expect!r}, got {got!r}"]


def test_the_suite_is_big_enough_and_commented() -> None:
    good = [f for f in FILES if "error" not in json.loads(f.read_text())["expect"]]
    assert len(good) >= 30
    for f in FILES:
        doc = json.loads(f.read_text())
        assert isinstance(doc.get("comment"), str) and "\n" not in doc["comment"], f.name


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario(path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    expect = json.loads(path.read_text())["expect"]
    rc = main(["--home", str(tmp_path / "no-home"), "simulate", "--json", str(path)])
    out, err = capsys.readouterr()
    if "error" in expect:
        assert rc != 0 and out == ""
        assert f"error: {expect['error']}:" in err, err
        return
    assert rc == 0, err
    got = json.loads(out)
    assert list(got) == ["state", "decided_round", "version", "text", "rounds"]
    if path.stem in EXACT:
        assert got == expect
    problems = matches(expect, got)
    assert not problems, "\n".join(problems)
