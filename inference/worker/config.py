"""A worker's settings."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from inference.runner import Runner

RunnerFactory = Callable[[], Runner]
# Host RAM for evicted conversations' KV states: SmolLM2-135M needs about 23 KB a token,
# so 256 MB keeps about 11,000 tokens of history (an 8B model: about 2,000).
DEFAULT_HOST_CACHE_MB = 256


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    name: str = ""
    # The name jobs ask for this worker's model by (default: the runner's model name).
    model_name: str = ""
    # A pending job idle this long belongs to a dead worker and may be claimed.
    claim_idle_ms: int = 15_000
    # Deliveries after which a job is dead-lettered, so a poison job cannot loop forever.
    max_deliveries: int = 3
    # How often running jobs are re-claimed (must be well under claim_idle_ms).
    keepalive_s: float = 2.0
    # Cancellations arrive by pub/sub at once; this re-check of the cancel keys covers
    # messages missed while the subscription reconnected.
    cancel_check_s: float = 1.0
    # While jobs run, how often the queue is polled for new ones (a round trip each).
    poll_busy_s: float = 0.025
    heartbeat_s: float = 2.0
    # A worker that has not announced itself for this long gets no handed-over jobs:
    # alive, it announces every `heartbeat_s` (and whenever its load changes).
    handover_fresh_s: float = 6.0
    # Jobs taken beyond the free slots, to choose fairly between communities: a busy one
    # cannot fill every slot while another waits.
    lookahead: int = 8
    # How long `Worker.start()` waits for the model to load and the first announcement.
    startup_timeout_s: float = 600.0

    @property
    def worker_name(self) -> str:
        return self.name or f"{socket.gethostname()}-{os.getpid()}"
