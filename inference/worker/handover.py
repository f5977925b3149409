"""Handovers: a job that should run on another live worker goes onto that worker's
pending list (`XCLAIM`), and the receiver is woken.

A job naming a model served elsewhere goes to the worker serving it with the most free
slots (none: the job fails, clearly). A fresh job (just read from the stream) whose
conversation another worker with a free slot caches goes there. Only fresh jobs follow
their conversation, never ones handed to or reclaimed by this worker: so a job moves once
for its cache, and workers with diverging views of an affinity cannot bounce it."""

from __future__ import annotations

import redis

from inference.fair_queue import Entry
from inference.metrics import WorkerMetrics
from inference.peers import Peer, peers_serving, read_peers
from inference.protocol import JOBS_STREAM, WORKER_GROUP, affinity_key
from inference.worker.config import WorkerConfig
from inference.worker.queue import JobQueue


class Handover:
    def __init__(
        self, queue: JobQueue, config: WorkerConfig, metrics: WorkerMetrics, model_name: str
    ) -> None:
        self.queue = queue
        self.client: redis.Redis = queue.client
        self.config = config
        self.metrics = metrics
        self.model_name = model_name

    def route(self, entries: list[Entry], fresh: bool = True) -> list[Entry]:
        """Hand each entry that should run elsewhere to that worker, fail those no live
        worker can run; return the entries left to run here."""
        me, fresh_s = self.config.worker_name, self.config.handover_fresh_s
        foreign = {fields.get("model", "") for _, fields in entries} - {"", self.model_name}
        serving = {model: peers_serving(self.client, model, fresh_s, me) for model in foreign}
        holders = self._holders(entries) if fresh else {}
        handed: list[tuple[str, Peer]] = []
        unserved: list[Entry] = []
        for entry in entries:
            entry_id, fields = entry
            model = fields.get("model", "")
            if model in serving:
                if not serving[model]:
                    unserved.append(entry)
                    continue
                target = max(serving[model], key=lambda peer: peer.free_slots)
            else:
                holder = holders.get(fields.get("affinity", ""))
                if holder is None or holder.free_slots <= 0 or model not in ("", holder.model):
                    continue
                target = holder
            target.free_slots -= 1  # its announced load is a moment old: do not flood it
            handed.append((entry_id, target))
        for entry_id, fields in unserved:
            message = f"no worker serves the model {fields['model']!r} now"
            self.queue.fail(entry_id, fields.get("id", ""), message)
        sent = self._move(handed, fresh)
        done = sent | {entry_id for entry_id, _ in unserved}
        return [entry for entry in entries if entry[0] not in done]

    def _move(self, handed: list[tuple[str, Peer]], fresh: bool) -> set[str]:
        """Put entries on other workers' pending lists; the ids of those moved."""
        if not handed:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for entry_id, peer in handed:
            # JUSTID leaves the delivery count alone; for a fresh entry RETRYCOUNT 0
            # takes back this worker's read, so the receiver's claim counts as the job's
            # first delivery (a reclaimed one keeps its count, for the dead-letter limit).
            retries = 0 if fresh else None
            pipe.xclaim(
                JOBS_STREAM, WORKER_GROUP, peer.name, 0, [entry_id], justid=True, retrycount=retries
            )
        for client_id in {peer.client_id for _, peer in handed} - {0}:
            # An idle receiver is blocked reading the stream: wake it to look now. It may
            # be refused (an ACL without CLIENT); then it looks within a second anyway.
            pipe.client_unblock(client_id)
        claims = pipe.execute(raise_on_error=False)[: len(handed)]
        sent = {
            entry_id
            for (entry_id, _), claimed in zip(handed, claims, strict=True)
            if claimed and not isinstance(claimed, Exception)  # else still ours: run it here
        }
        self.metrics.handovers.labels(direction="sent").inc(len(sent))
        return sent

    def _holders(self, entries: list[Entry]) -> dict[str, Peer]:
        """By affinity key: the live worker other than this one caching that conversation."""
        ordered = sorted({fields.get("affinity", "") for _, fields in entries} - {""})
        if not ordered:
            return {}
        names: list[str | None] = self.client.mget([affinity_key(key) for key in ordered])  # type: ignore[assignment]
        by_key = {
            key: name
            for key, name in zip(ordered, names, strict=True)
            if name and name != self.config.worker_name
        }
        peers = read_peers(self.client, by_key.values(), self.config.handover_fresh_s)
        return {key: peers[name] for key, name in by_key.items() if name in peers}
