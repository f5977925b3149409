"""Cancellations: job ids published on `CANCEL_CHANNEL`, heard by a thread of their own,
and the cancel keys, re-checked now and then for messages missed while the subscription
reconnected. The loop applies both between decode steps (the runner is not
thread-safe)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import redis
from redis.exceptions import RedisError

from inference.protocol import CANCEL_CHANNEL, cancel_key


class CancelListener:
    def __init__(self, redis_url: str, stop: threading.Event) -> None:
        self.redis_url = redis_url
        self.stop = stop
        self._heard: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name="inference-cancels", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def take_heard(self) -> set[str]:
        """The job ids heard since the last call."""
        with self._lock:
            heard, self._heard = self._heard, set()
        return heard

    def _listen(self) -> None:
        while not self.stop.is_set():
            client = redis.Redis.from_url(self.redis_url, decode_responses=True)
            pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(CANCEL_CHANNEL)
                while not self.stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        with self._lock:
                            self._heard.add(str(message["data"]))
            except RedisError:
                self.stop.wait(1.0)
            finally:
                pubsub.close()
                client.close()


def cancelled(client: redis.Redis, job_ids: Iterable[str]) -> list[str]:
    """Those of `job_ids` whose cancel key is set (one round trip)."""
    ordered = list(job_ids)
    if not ordered:
        return []
    pipe = client.pipeline(transaction=False)
    for job_id in ordered:
        pipe.exists(cancel_key(job_id))
    return [job_id for job_id, flag in zip(ordered, pipe.execute(), strict=True) if flag]
