"""`make demo`: three community nodes and their municipality, as real daemons on loopback.

Each node is its own home and its own `imier daemon` process on 127.0.0.1
(:class:`imier.testing.HomeProcess`); every step is a real `imier` command
run as a subprocess, as a person would type it. A proposal of the municipality is walked through its rounds with
charter windows of seconds: round 1 fails on a minor objection, an amendment
is adopted in round 2, round 2 passes, contention ends, and every node prints
the verdict it computes itself. Tellers drawn by lot beforehand let the
daemons seal round 1 by themselves (docs/rules.md s.10): the demo prints
``sealed k/n``. Then everything stops cleanly.

Every wait has a deadline; the whole run takes well under two minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .testing import HomeProcess, TimedOut, wait_for

PASSPHRASE = "demo"
T_START = time.monotonic()
CHARTER = ["--charter", "discussion=3s", "--charter", "vote_window=5s",
           "--charter", "amendment_window=5s", "--charter", "contention_window=3s"]


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T_START:5.1f}s] {msg}", flush=True)


class DemoHome(HomeProcess):
    """One neighbourhood's node in the demo: its home, its person, its community."""

    def __init__(self, root: Path, name: str, person: str, town: str) -> None:
        super().__init__(root, name, passphrase=PASSPHRASE)
        self.person, self.town = person, town
        self.pub = ""
        self.body = ""


def everywhere(nodes: list[DemoHome], ev_id: str, what: str) -> None:
    wait_for(lambda: all(n.holds(ev_id) for n in nodes), 20, f"{what} to reach every node")


def status(node: DemoHome, prop: str) -> Any:
    return node.doc("status", prop)


def _sealed(doc: Any, window: str) -> Any:
    """The window's seal in ``doc`` if it is sealed, else None."""
    return next((x for x in doc.get("seals", ()) if x["window"] == window and x["sealed"]), None)


def _short_seal_delay(node: DemoHome) -> None:
    """``seal_delay = "1s"`` in the node's config: its daemon seals 1 s after a close."""
    cfg = node.home / "config.toml"
    cfg.write_text(cfg.read_text().replace("[node]\n", '[node]\nseal_delay = "1s"\n', 1))


def wait_phase(node: DemoHome, prop: str, phase: str, rnd: int | None, what: str) -> Any:
    def ok() -> Any:
        d = status(node, prop)
        if d["open_phase"] == phase and (rnd is None or d["round_open"] == rnd):
            return d
        return None

    return wait_for(ok, 30, what, interval=0.3)


def wait_state(node: DemoHome, prop: str, state: str, timeout: float, what: str) -> Any:
    def ok() -> bool:
        return bool(status(node, prop)["state"] == state)

    return wait_for(ok, timeout, what)


def run(root: Path) -> int:
    north = DemoHome(root, "north", "ana", "North")
    east = DemoHome(root, "east", "ben", "East")
    west = DemoHome(root, "west", "cid", "West")
    nodes = [north, east, west]
    say("Three neighbourhood nodes, each with its own home and one person:")
    for n in nodes:
        n.imier("init", "--name", n.name)
        _short_seal_delay(n)
        n.pub = n.imier("key", "new", n.person)
        n.body = n.imier("body", "found", "community", n.town, *CHARTER)
        say(f"  {n.name}: {n.person} founds the community {n.town} ({n.body[:12]})")

    say("Starting three daemons on 127.0.0.1 (east and west bootstrap from north)")
    daemon = ["--no-mdns", "--sync-interval", "2s"]
    addr = north.start(*daemon)
    for n in (east, west):
        n.start(*daemon, "--bootstrap", addr)
    for n in nodes:
        say(f"  {n.name}: {n.doc('id')['addresses'][0]}")

    say("north follows East and West to found the municipality with them")
    for n in (east, west):
        north.imier("body", "follow", n.body)
    for n in (east, west):
        everywhere([north], n.body, f"{n.town}'s record")
    muni = north.imier("body", "found", "municipality", "Riverside", *CHARTER,
                       "--part", "North", "--part", "East", "--part", "West")
    say(f"  Riverside founded ({muni[:12]}): discussion 3s, votes 5s, amendments 5s, contention 3s")
    time.sleep(4)  # two sync rounds and gossip: time enough for it to arrive, if it would
    early = [n.town for n in (east, west) if n.holds(muni)]
    if early:
        raise RuntimeError(f"{' and '.join(early)} hold Riverside before consenting to it: "
                           "federation by consent is broken (docs/rules.md s.9.2)")
    say("  naming a community is only an invitation: after two sync rounds East and West "
        "still do not hold Riverside")
    say("Each community consents to Riverside by carrying a 'federate' proposal (docs/rules.md s.9.2)")
    joins: list[tuple[DemoHome, str]] = []
    for n in nodes:
        jp = n.imier("propose", n.town, "--kind", "federate", "--federation", muni,
                     "--title", "Join Riverside", "--text", f"{n.town} joins Riverside.")
        joins.append((n, jp))
    for n, jp in joins:
        wait_phase(n, jp, "vote", 1, f"{n.town}'s round 1 to open")
        n.imier("vote", jp, "yes")
    for n, jp in joins:
        wait_state(n, jp, "carried", 30, f"{n.town}'s consent")
        say(f"  {n.town}: carried")
    wait_for(lambda: all(n.holds(muni) for n in nodes), 40, "the municipality to reach every node")
    say("  every node now holds Riverside (a federation its community joined)")

    say("Riverside draws two tellers by lot, to close its counts (docs/rules.md s.10)")
    draw = north.imier("propose", "Riverside", "--kind", "draw", "--task", "teller", "--seats", "2",
                       "--all-members", "--title", "Tellers", "--text", "Two tellers, drawn by lot.")
    everywhere(nodes, draw, "the draw")
    wait_phase(north, draw, "vote", 1, "the draw's vote to open")
    for n in nodes:
        n.imier("vote", draw, "yes")
    say("  all three vote yes on the draw; it carries when its contention closes")

    prop = north.imier("propose", "Riverside", "--title", "Tool library",
                       "--text", "Riverside opens a tool library in the old station.")
    say(f"ana proposes in Riverside: 'Tool library' ({prop[:12]})")
    everywhere(nodes, prop, "the proposal")

    wait_phase(north, prop, "vote", 1, "round 1 to open")
    say("Round 1 is open: votes cast on three different nodes")
    north.imier("vote", prop, "yes")
    east.imier("vote", prop, "yes")
    west.imier("vote", prop, "no", "--minor", "--category", "cost")
    say("  ana yes (north), ben yes (east), cid no: minor objection 'cost' (west)")

    d = wait_phase(north, prop, "amend", 2, "round 1 to close")
    say(f"  round 1: {d['rounds'][0]['support']} of the communities passed it; 9/10 needed, so round 2")
    # the draw carried before round 1 closed: its tellers were in force at the close
    d = wait_for(lambda: (x := status(north, draw))["state"] == "carried" and x, 20, "the draw to carry")
    who = {n.pub: f"{n.person} ({n.name})" for n in nodes}
    say(f"  Riverside's tellers, drawn by lot: {', '.join(who.get(k, k[:8]) for k in d['draw']['chosen'])}; "
        "their daemons seal each window 1s after it closes")
    amend = east.imier("amend", prop, "--text",
                       "Riverside opens a tool library in the old station, paid from the "
                       "repair budget already set aside.")
    say(f"ben (east) proposes an amendment answering 'cost' ({amend[:12]})")
    everywhere(nodes, amend, "the amendment")
    for n in nodes:
        n.imier("vote", amend, "yes")
    say("  all three vote yes on the amendment")

    wait_phase(north, prop, "vote", 2, "round 2's vote to open")
    d = status(north, prop)
    for r in d["rounds"]:
        for a in r.get("amendments", []):
            say(f"  amendment {'ADOPTED' if a['adopted'] else 'not adopted'} with {a['support']}")
    say(f"Round 2 vote on version {d['version']}: everyone votes yes")
    for n in nodes:
        n.imier("vote", prop, "yes")

    def decided() -> Any:
        d = status(north, prop)
        return d if d["state"] in ("carried", "tabled", "rejected") else None

    wait_for(decided, 30, "the verdict", interval=0.5)
    for n in nodes:
        def agrees(n: DemoHome = n) -> bool:
            return bool(status(n, prop)["state"] == status(north, prop)["state"])

        wait_for(agrees, 20, f"{n.name} to reach the same verdict")
    r1 = wait_for(lambda: all(_sealed(status(n, prop), "r1") for n in nodes) and _sealed(status(north, prop), "r1"),
                  30, "the tellers' daemons to seal round 1", interval=0.5)
    say(f"Round 1 {r1['text']} (on every node: the tellers' daemons sealed it)")
    from datetime import datetime, timezone

    as_of = datetime.now(timezone.utc).isoformat()
    say("Each node computes the verdict from its own store (status --as-of the same moment):")
    docs = []
    for n in nodes:
        d = n.doc("status", prop, "--as-of", as_of)
        docs.append(d)
        say(f"  {n.name:5}: {d['state'].upper()} in round {d['decided_round']}, "
            f"text version {d['version']} -- {d['explain']}")
    # "late" is each node's own warning (when an event reached it, docs/rules.md s.10.6):
    # the verdicts, and everything else, must be identical
    shared = [{k: v for k, v in x.items() if k != "late"} for x in docs]
    same = all(json.dumps(x, sort_keys=True) == json.dumps(shared[0], sort_keys=True) for x in shared)
    say("  identical on all three nodes" if same else "  THE NODES DISAGREE")
    peers = north.doc("peers")
    say(f"north's peers: {', '.join(p['node'] or p['peer_id'][-8:] for p in peers['peers'] if p['connected'])}"
        f"; offences: {sum(p['offences'] for p in peers['peers'])}")

    say("Stopping the daemons (SIGTERM)")
    for n in nodes:
        took = n.stop()
        say(f"  {n.name} stopped in {took:.2f} s")
    return 0 if same and docs[0]["state"] == "carried" else 1


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="imier-demo-"))
    os.chmod(root, 0o700)
    nodes_dir = root
    code = 1
    try:
        code = run(nodes_dir)
    except (TimedOut, RuntimeError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        for log in sorted(root.glob("*.log")):
            print(f"--- {log.name} (last lines)", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        for info in root.glob("*/daemon.json"):
            try:
                pid = int(json.loads(info.read_text())["pid"])
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, ValueError, KeyError, json.JSONDecodeError, OSError):
                pass
        time.sleep(0.5)
        if code == 0:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"homes and logs kept in {root}", file=sys.stderr)
    say("done" if code == 0 else "demo did not end as expected")
    return code


if __name__ == "__main__":
    sys.exit(main())
