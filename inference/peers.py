"""What a worker knows of the other workers: their announcements, read when a job
should run elsewhere (its conversation is cached there, or it names a model served
there)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis

from inference.protocol import WORKER_HEARTBEAT_TTL_S, WORKER_KEY_PREFIX, worker_key

# The fields of a worker's hash a peer is read from.
_FIELDS = ["model", "slots", "busy", "client"]


@dataclass
class Peer:
    """A live worker, as its announcement describes it."""

    name: str
    model: str
    free_slots: int
    client_id: int  # the connection it blocks on while idle: unblocking it wakes it

    @classmethod
    def parse(
        cls, name: str, announced: list[str | None], age_s: float, fresh_s: float
    ) -> Peer | None:
        """From `HMGET model slots busy client` and the announcement's age; None when
        the worker has no hash (dead), has not announced itself for `fresh_s` (it may
        have died: its hash outlives it), or has one this code cannot read."""
        model, slots, busy, client_id = announced
        if slots is None or age_s > fresh_s:
            return None
        try:
            return cls(name, model or "", int(slots) - int(busy or 0), int(client_id or 0))
        except ValueError:
            return None


def read_peers(client: redis.Redis, names: Iterable[str], fresh_s: float) -> dict[str, Peer]:
    """By name: those of the named workers that are alive."""
    ordered = sorted(set(names))
    if not ordered:
        return {}
    pipe = client.pipeline(transaction=False)
    for name in ordered:
        pipe.hmget(worker_key(name), _FIELDS)
        # Every announcement resets the hash's expiry, so what is left of it dates the
        # last one by Redis's clock (hosts' clocks may disagree). -1: no expiry, not a
        # worker's announcement.
        pipe.pttl(worker_key(name))
    replies = pipe.execute()
    peers = {}
    for name, announced, ttl_ms in zip(ordered, replies[::2], replies[1::2], strict=True):
        age_s = WORKER_HEARTBEAT_TTL_S - ttl_ms / 1000 if ttl_ms >= 0 else float("inf")
        peer = Peer.parse(name, announced, age_s, fresh_s)
        if peer is not None:
            peers[name] = peer
    return peers


def peers_serving(client: redis.Redis, model: str, fresh_s: float, me: str) -> list[Peer]:
    """The live workers other than `me` that serve `model`."""
    keys = client.scan_iter(match=f"{WORKER_KEY_PREFIX}*", count=100)
    names = {str(key).removeprefix(WORKER_KEY_PREFIX) for key in keys} - {me}
    return [peer for peer in read_peers(client, names, fresh_s).values() if peer.model == model]
