"""What the library refuses, found by trying it as a new user would: each case
gives one clear line, exits non-zero and leaves the store as it was.

Through the real `imier` command (in-process), and through :mod:`imier.api`
directly for what the command can no longer write (a recall of a proposal
that made no mandate, to vote on).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imier.api import Clerk, Signer, init
from imier.protocol.errors import ImierError, LocalError, Rejected
from imier.protocol.events import Recall
from imier.store.home import Home
from imier.testing import R1, T0, World, contention_after, key, pub

from .cli_helpers import Imier

NOW = 1_800_000_000_000
S = 1000
FAST = ["--charter", "discussion=5s", "--charter", "vote_window=60s", "--charter", "amendment_window=60s",
        "--charter", "contention_window=60s"]


@pytest.fixture
def north(tmp_path, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    n = Imier(tmp_path / "north", capsys, monkeypatch)
    n.now = NOW
    n("init", "--name", "north")
    n.keys = {name: n("key", "new", name).out.strip() for name in ("ana", "ben")}
    n.body = n("body", "found", "community", "North", *FAST, as_="ana").out.strip()
    n.now += S
    n("member", "admit", "North", "ben", as_="ana")
    n.now += S
    return n


def refused(n: Imier, *args: str, words: str, as_: str = "ana") -> str:
    before = n.store_digest()
    r = n(*args, as_=as_, ok=False)
    assert r.code != 0, r
    line = r.err.strip()
    assert line.splitlines() == [line], line
    assert "Traceback" not in line and words in line, line
    assert r.out == ""
    assert n.store_digest() == before
    return line


def carried_general(n: Imier) -> str:
    prop = n("propose", "North", "--title", "Tools", "--text", "A tool library", as_="ana").out.strip()
    n.now += 6 * S
    n("vote", prop, "yes", as_="ana")
    n("vote", prop, "yes", as_="ben")
    n.now += 130 * S  # round 1 and contention closed: carried
    assert n("status", prop, "--json").json()["state"] == "carried"
    return prop


# -- the list of issue 9 --------------------------------------------------------------------


def test_recall_of_a_proposal_that_made_no_mandate_is_refused(north) -> None:  # type: ignore[no-untyped-def]
    prop = carried_general(north)
    refused(north, "recall", prop, "--holder", "ana", "--reason", "gone", words="made no mandate")


def test_a_vote_on_a_recall_that_does_not_count_is_refused() -> None:
    w = World()
    w.body("north", 3)
    pid = w.propose("north", at=T0)
    w.votes("north", pid, R1[0], yes=3)
    end = contention_after(1)[1]
    rid = w.recall("north1", pid, "north0", end + 10)  # written past the library, as a peer might
    clerk = w.clerk("north2", at=end + 20)
    before = len(w.events())
    with pytest.raises(LocalError, match="the proposal made no mandate"):
        clerk.vote(rid, "yes")
    with pytest.raises(LocalError, match="made no mandate"):
        w.clerk("north1", at=end + 30).recall(pid, pub("north0"), "again")
    assert len(w.events()) == before


def test_set_without_kind_charter_is_refused(north) -> None:  # type: ignore[no-untyped-def]
    line = refused(north, "propose", "North", "--title", "Q", "--text", "x", "--set", "quorum=1/3",
                   words="--set")
    assert "--kind charter" in line


@pytest.mark.parametrize("option, value, kind", [
    ("--holder", "ana", "mandate"), ("--seats", "1", "draw"), ("--committee", "North", "renew"),
    ("--candidate", "ana", "draw"), ("--term", "3d", "mandate"),
])
def test_an_option_of_another_kind_is_refused_not_dropped(north, option, value, kind) -> None:  # type: ignore[no-untyped-def]
    line = refused(north, "propose", "North", "--title", "Q", "--text", "x", option, value, words=option)
    assert kind in line


def test_renew_of_a_body_that_is_not_a_committee_is_refused(north) -> None:  # type: ignore[no-untyped-def]
    refused(north, "propose", "North", "--title", "R", "--text", "x", "--kind", "renew",
            "--committee", "North", words="not a committee")


def test_mandate_scope_must_name_a_proposal_or_federation(north) -> None:  # type: ignore[no-untyped-def]
    n = north
    mandate = ["propose", "North", "--title", "M", "--text", "x", "--kind", "mandate", "--holder", "ben",
               "--task", "treasurer", "--term", "30d", "--scope"]
    refused(n, *mandate, "ab" * 32, words="no proposal or federation")
    line = refused(n, *mandate, "z" * 64, words="not an id")
    assert "--scope" in line
    refused(n, *mandate, "North", words="not an id")  # a community is not a scope
    target = n("propose", "North", "--title", "Garden", "--text", "g", as_="ana").out.strip()
    n.now += S
    made = n(*mandate, target[:12], "--json", as_="ana").json()
    got = n.store_digest()
    assert made["proposal_kind"] == "mandate" and got
    from imier.store.db import Store

    with Store.open(n.home / "store.sqlite3") as store:
        ev = store.get(bytes.fromhex(made["id"]))
    assert ev is not None and ev.data.scope == bytes.fromhex(target)  # type: ignore[union-attr]


def test_seats_zero_has_its_own_message(north) -> None:  # type: ignore[no-untyped-def]
    line = refused(north, "propose", "North", "--title", "D", "--text", "x", "--kind", "draw",
                   "--candidate", "ana", "--candidate", "ben", "--seats", "0", "--task", "t",
                   words="--seats")
    assert "at least one seat" in line and "needs --candidate" not in line


def test_draw_over_all_members(north) -> None:  # type: ignore[no-untyped-def]
    doc = north("propose", "North", "--title", "Tellers", "--text", "x", "--kind", "draw", "--task", "teller",
                "--seats", "1", "--all-members", "--json", as_="ana").json()
    assert doc["proposal_kind"] == "draw"
    refused(north, "propose", "North", "--title", "D", "--text", "x", "--kind", "draw", "--task", "t",
            "--seats", "1", "--all-members", "--candidate", "ana", words="not both")


def test_failed_init_leaves_nothing(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    n = Imier(tmp_path / "fresh", capsys, monkeypatch, passphrase="")
    r = n("init", ok=False)
    assert r.code == 1 and "passphrase" in r.err
    assert not (tmp_path / "fresh").exists()


def test_interrupted_init_leaves_nothing(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import imier.store.home as home_mod

    def interrupted(*a: object, **k: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(home_mod, "seal", interrupted)  # Ctrl-C while the key is sealed
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    for where in (tmp_path / "new", existing):
        with pytest.raises(KeyboardInterrupt):
            init(Home(where), "n", "pw")
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]


def test_export_refuses_to_overwrite_without_force(north, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "north.bundle"
    out.write_bytes(b"last week's bundle")
    line = refused(north, "export", str(out), words="already exists")
    assert "--force" in line and out.read_bytes() == b"last week's bundle"
    assert north("export", str(out), "--force", "--json").json()["events"] >= 2


def test_withdraw_rules_come_from_the_tally(north) -> None:  # type: ignore[no-untyped-def]
    n = north
    prop = n("propose", "North", "--title", "T", "--text", "x", as_="ana").out.strip()
    refused(n, "withdraw", prop, words="only the proposer may withdraw", as_="ben")
    n.now += 6 * S + 60 * S  # round 1 closed (passed: contention is open)
    refused(n, "withdraw", prop, words="after round 1 closed")


def test_vote_refusals(north) -> None:  # type: ignore[no-untyped-def]
    n = north
    prop = n("propose", "North", "--title", "T", "--text", "x", as_="ana").out.strip()
    refused(n, "vote", prop, "yes", words="in discussion")
    n.now += 6 * S
    refused(n, "vote", prop, "yes", "--blocking", words="--minor/--blocking")
    refused(n, "vote", prop, "yes", "--category", "cost", words="--category")
    refused(n, "stand", prop, "no", words="cannot change your standing")
    refused(n, "amend", prop, "--text", "y", words="cannot amend")


# -- help, typos and words ----------------------------------------------------------------


def _leaves() -> list[tuple[str, object]]:
    import argparse

    from imier.cli.main import build_parser

    out: list[tuple[str, object]] = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and path:
            out.append((path, p))
        for a in subs:
            for name, sp in a.choices.items():
                walk(sp, f"{path} {name}".strip())

    walk(build_parser(), "")
    return out


def test_every_command_has_a_description_and_examples() -> None:
    leaves = _leaves()
    assert len(leaves) > 20
    for path, p in leaves:
        text = p.format_help()  # type: ignore[attr-defined]
        assert p.description, f"imier {path} --help has no description"  # type: ignore[attr-defined]
        assert "Examples:" in text and "imier " in text.split("Examples:")[1], path
    stand = dict(leaves)["stand"].format_help()  # type: ignore[attr-defined]
    assert "contention" in stand


def test_help_cites_only_what_the_repo_ships() -> None:
    for path, p in _leaves():
        text = p.format_help()  # type: ignore[attr-defined]
        for name in ("DECISIONS" ".md", "SIMULATE" ".md", "LIBP2P-NOTES" ".md", "CLI" ".md", "shared" "/"):  # split: not a citation
            assert name not in text, (path, name)


def test_a_mistyped_command_gets_did_you_mean(north) -> None:  # type: ignore[no-untyped-def]
    r = north("vot", "x", "yes", ok=False)
    assert r.code == 2 and "did you mean 'vote'?" in r.err
    r = north("body", "fuond", ok=False)
    assert r.code == 2 and "did you mean 'found'?" in r.err


def test_writes_confirm_in_words_and_json_has_the_facts(north) -> None:  # type: ignore[no-untyped-def]
    n = north
    r = n("propose", "North", "--title", "Tool library", "--text", "x", as_="ana")
    prop = r.out.strip()
    assert len(prop) == 64 and "ana proposed 'Tool library' to North" in r.err
    n.now += 6 * S
    r = n("vote", prop, "yes", as_="ana")
    assert r.out.strip() != prop and len(r.out.strip()) == 64
    assert "ana voted yes on 'Tool library' (round 1 closes " in r.err
    doc = n("vote", prop, "no", "--category", "cost", "--json", as_="ben").json()
    assert doc["by"] == "ben" and doc["choice"] == "no" and doc["round"] == 1
    assert doc["title"] == "Tool library" and doc["proposal"] == prop and isinstance(doc["closes"], int)
    assert doc["sentence"].startswith("ben voted no (minor objection: cost) on 'Tool library'")


def test_person_name_link_unlink(north) -> None:  # type: ignore[no-untyped-def]
    n = north
    r = n("person", "name", "Ana Lima", as_="ana")
    assert "Ana Lima" in r.err and "North" in r.err and len(r.out.strip()) == 64
    phone = pub("phone").hex()
    refused(n, "person", "unlink", phone, words="never linked")
    doc = n("person", "link", phone, "--json", as_="ana").json()
    assert doc["device"] == phone and doc["bodies"] == [n.body]
    n.now += S
    n("person", "unlink", phone, as_="ana")
    refused(n, "person", "link", n.keys["ana"], words="own key")


# -- the library directly ---------------------------------------------------------------------


def test_library_errors_keep_code_and_field() -> None:
    w = World()
    w.body("north", 2)
    clerk = w.clerk("north0", at=T0)
    with pytest.raises(Rejected) as exc:
        clerk.propose(w.ids["north"], title="D", text="x", kind="draw", candidates=[pub("north0")],
                      seats=0, task="t")
    assert (exc.value.code, exc.value.field) == ("bad_field", "seats")
    with pytest.raises(Rejected) as exc:
        clerk.propose("north", title="Q", text="x", charter={"quorum": "1/3"})
    assert (exc.value.code, exc.value.field) == ("unknown_field", "charter")
    done = clerk.propose("north", title="Q", text="x", kind="charter", charter={"quorum": "1/3"})
    assert done.facts["proposal_kind"] == "charter" and done.id in {e.id for e in w.events()}


def test_a_stranger_cannot_propose_and_the_key_is_not_unlocked() -> None:
    w = World()
    w.body("north", 2)
    unlocked: list[bool] = []

    def unlock():  # type: ignore[no-untyped-def]
        unlocked.append(True)
        return key("stranger")

    clerk = Clerk(w.store, clock=lambda: T0, signer=Signer(pub("stranger"), unlock))
    with pytest.raises(ImierError, match="not a member"):
        clerk.propose("north", title="T", text="x")
    assert unlocked == []
    assert not any(isinstance(e.data, Recall) for e in w.events())


def test_a_meeting_through_the_library() -> None:
    """The page's path: found, admit, propose, vote, amend, stand through one Clerk per person."""
    w = World()
    t = T0
    ana = w.clerk("ana", at=t)
    body = ana.found("community", "North", charter={"discussion": "5s", "vote_window": "60s",
                                                    "amendment_window": "60s", "contention_window": "60s"})
    assert body.facts["verb"] == "founded" and "ana founded the community 'North'" in body.sentence
    for who in ("ben", "cid"):
        t += 1
        w.clerk("ana", at=t).admit("North", pub(who))
    assert w.clerk("ana", at=t).members("North") == sorted([pub("ana"), pub("ben"), pub("cid")])
    t += 1
    prop = w.clerk("ana", at=t).propose("North", title="Garden", text="A garden.").id
    t += 6 * S
    w.clerk("ana", at=t).vote(prop, "yes")
    w.clerk("ben", at=t + 1).vote(prop, "no", category="water")
    w.clerk("cid", at=t + 2).vote(prop, "no", category="water")
    t += 61 * S  # round 1 failed: round 2's amendment window
    amendment = w.clerk("cid", at=t).amend(prop, "A garden with a rain tank.")
    assert amendment.facts["round"] == 2
    for i, who in enumerate(("ana", "ben", "cid")):
        w.clerk(who, at=t + 1 + i).vote(amendment.id, "yes")
    t += 60 * S
    for i, who in enumerate(("ana", "ben", "cid")):
        w.clerk(who, at=t + i).vote(prop, "yes")
    t += 60 * S
    stood = w.clerk("ben", at=t).stand(prop, "no")
    assert "ben now stands no on 'Garden'" in stood.sentence
    r = w.tally(prop, t + 120 * S)
    assert (r.state, r.version, r.decided_round) == ("carried", 2, 2)
    assert r.ignored == ()


def test_vote_through_the_library_loads_no_network_stack(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    code = (
        "import sys, os\n"
        "from imier.cli.main import main\n"
        "os.environ['IMIER_NOW'] = '1800000000000'\n"
        "assert main(['init']) == 0 and main(['key', 'new', 'ana']) == 0\n"
        "assert main(['body', 'found', 'community', 'North', '--charter', 'discussion=5s']) == 0\n"
        "os.environ['IMIER_NOW'] = '1800000001000'\n"
        "import io, json, contextlib\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    assert main(['propose', 'North', '--title', 'T', '--text', 'x', '--json']) == 0\n"
        "os.environ['IMIER_NOW'] = '1800000010000'\n"
        "assert main(['vote', json.loads(out.getvalue())['id'], 'yes']) == 0\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('libp2p', 'trio')]\n"
        "assert not loaded, loaded[:5]\n"
    )
    env = {"IMIER_HOME": str(tmp_path / "h"), "IMIER_PASSPHRASE": "pw", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_adding_a_body_to_a_federation() -> None:
    w = World()
    w.body("north", 2)
    w.body("south", 2)
    w.body("east", 1)
    w.body("town", parts=("north", "south"))
    before = len(w.events())
    with pytest.raises(LocalError, match="already a member"):
        w.clerk("north0", at=T0).admit("town", "north")
    with pytest.raises(LocalError, match="cannot name"):
        w.clerk("stranger", at=T0).admit("town", "east")
    # docs/rules.md s.9.2: a person of the joining body is not a person of the federation
    with pytest.raises(LocalError, match="cannot name"):
        w.clerk("east0", at=T0).admit("town", "east")
    assert len(w.events()) == before
    done = w.clerk("north0", at=T0).admit("town", "east")
    assert done.sentence.startswith("north0 invited east to town; it joins once east carries")
    from imier.consensus import members_of_federation, pending_invitations

    # named, not yet a member: the body's own carried 'federate' decides
    assert members_of_federation(w.events(), w.ids["town"], T0) == {w.ids["north"], w.ids["south"]}
    assert pending_invitations(w.events(), w.ids["east"], T0) == [w.ids["town"]]
    end = w.consent(["east"], "town")
    assert members_of_federation(w.events(), w.ids["town"], max(end, T0) + 1) == {
        w.ids["north"], w.ids["south"], w.ids["east"]}


def test_recall_of_a_mandate_and_its_vote_name_the_holder() -> None:
    from imier.protocol.events import Profile

    w = World()
    w.body("north", 3)
    pid = w.propose("north", at=T0, kind="mandate", holder=pub("north1"), task="treasurer",
                    term_ms=30 * 86_400_000)
    w.votes("north", pid, R1[0], yes=3)
    end = contention_after(1)[1]
    w.emit("north1", w.ids["north"], Profile(name="Ben"), end + 5)
    # north0's node holds only north0's key: north1 is known by the name they chose
    alone = Clerk(w.store, clock=lambda: end + 10, signer=Signer.of(key("north0")),
                  people={"north0": pub("north0")})
    recall = alone.recall(pid, pub("north1"), "never reported back")
    assert f"Ben ({pub('north1').hex()[:4]})'s mandate" in recall.sentence
    assert isinstance(recall.facts["closes"], int)
    vote = Clerk(w.store, clock=lambda: end + 20, signer=Signer.of(key("north2"))).vote(recall.id, "yes")
    assert "voted yes on the recall of Ben (" in vote.sentence and vote.facts["not_counted"] is None
    with pytest.raises(LocalError, match="names no holder"):
        w.clerk("north0", at=end + 30).recall(pid, pub("north2"), "not theirs")
