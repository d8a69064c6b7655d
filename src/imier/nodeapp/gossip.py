"""Gossip as a hint: one GossipSub topic per body (``imier/body/1/<hex id>``).

* The node subscribes to the topic of every body it holds (re-checked
  whenever the held set changes).
* Local events from the outbox are published on their body's topic, a few
  per message (syncwire.encode_gossip).
* A received message goes through ``Node.ingest_remote`` (decode, verify,
  bounds, ingest) like a sync frame or a bundle; an event whose ``prev`` we
  lack makes the node sync with the sender.

Nothing here is relied upon for completeness: a dropped message is healed by
the next sync (node.py invariant 2).

Invariants:

1. One reader task per subscribed topic reads messages one by one (bounded
   work per message; the library's queues are raised in quirks.py).
2. Messages from a banned peer are dropped unread.
3. A topic validator decodes and verifies every message before the router
   delivers or relays it: invalid data is counted against its origin (the
   message is signed by it) and goes no further.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ..protocol import syncwire as wire
from ..protocol.errors import Rejected
from ..protocol.events import decode_event

__all__ = ["Gossip"]

log = logging.getLogger("imier.gossip")


class Gossip:
    def __init__(self, node: Any) -> None:
        from . import quirks

        self.node = node
        self.pubsub, self.router = quirks.make_gossip(node.host)
        self.topics: dict[str, Any] = {}
        self.published = 0

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from libp2p.tools.anyio_service import background_trio_service

        async with background_trio_service(self.pubsub), background_trio_service(self.router):
            with trio.fail_after(10):
                await self.pubsub.wait_until_ready()
            async with trio.open_nursery() as nursery:
                await self._refresh(nursery)
                task_status.started()
                while True:
                    with trio.move_on_after(2):
                        await self.node.changed.wait()
                    self.node.changed = trio.Event()
                    await self._refresh(nursery)

    async def _refresh(self, nursery: trio.Nursery) -> None:
        for body in sorted(self.node.held()):
            topic = wire.topic_for(body)
            if topic in self.topics:
                continue
            # Validate before the router relays: bad data is neither delivered nor passed on.
            self.pubsub.set_topic_validator(topic, self._validator(body), False)
            sub = await self.pubsub.subscribe(topic)
            self.topics[topic] = sub
            nursery.start_soon(self._read, topic, body, sub)
            log.debug("subscribed to %s", topic)

    def _validator(self, body: bytes) -> Any:
        def valid(forwarder: Any, msg: Any) -> bool:
            try:
                for raw in wire.decode_gossip(msg.data):
                    if decode_event(raw).body_id != body:
                        raise Rejected("wrong_body", "event of another body on this topic")
                return True
            except Rejected as exc:
                try:
                    from libp2p.peer.id import ID

                    origin = ID(msg.from_id).to_string()
                except Exception:
                    origin = forwarder.to_string()
                self.node.offend(self.node.peer(origin), exc.code, f"gossip: {exc}")
                return False

        return valid

    async def _read(self, topic: str, body: bytes, sub: Any) -> None:
        from libp2p.peer.id import ID

        me = self.node.host.get_id()
        while True:
            msg = await sub.get()
            try:
                origin = ID(msg.from_id)
            except Exception:
                continue
            if origin == me:
                continue  # our own publication, already in the store
            peer = self.node.peer(origin.to_string())
            if peer.banned():
                continue
            try:
                raws = wire.decode_gossip(msg.data)
            except Rejected as exc:
                self.node.offend(peer, exc.code, f"gossip: {exc}")
                continue
            try:
                await self.node.ingest_remote(raws, peer, source="gossip", bodies={body})
            except Exception:  # a local failure (e.g. the store is busy): sync will heal it
                log.exception("gossip message on %s could not be stored", topic[-12:])

    async def publish(self, raws: list[bytes]) -> None:
        """Publish events on their bodies' topics, a few per message; never blocks on peers."""
        by_topic: dict[str, list[bytes]] = {}
        for raw in raws:
            try:
                ev = decode_event(raw, verify=False)
            except Rejected:
                continue
            by_topic.setdefault(wire.topic_for(ev.body_id), []).append(raw)
        for topic, items in by_topic.items():
            batch: list[bytes] = []
            size = 0
            for raw in items + [b""]:
                if batch and (not raw or len(batch) >= wire.MAX_GOSSIP_EVENTS
                              or size + len(raw) > 200_000):
                    try:
                        with trio.move_on_after(2):
                            await self.pubsub.publish(topic, wire.encode_gossip(batch))
                            self.published += len(batch)
                    except Exception as exc:  # gossip is a hint: log and go on
                        log.info("publishing on %s failed: %s", topic[-12:], exc)
                    batch, size = [], 0
                if raw:
                    batch.append(raw)
                    size += len(raw)
