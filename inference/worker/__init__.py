"""The inference worker: takes jobs from the Redis Stream and streams completions back.

One worker process holds one model and one llama.cpp context with `slots` sequences,
driven by one loop in one thread (a llama.cpp context is not thread-safe). Each turn of
the loop admits new jobs into free slots, runs one batched decode step for every running
job, and writes what each produced to its output stream in one pipelined round trip.

The parts, one module each:
- `loop`: the `Worker` (lifecycle) and its loop over a `Runner` (`inference.runner`),
  with admission;
- `queue`: the consumer group: take new jobs and handed ones, claim abandoned ones,
  keep running ones claimed, acknowledge, fail, dead-letter;
- `cancels`: cancel messages heard by pub/sub, and the cancel keys re-checked;
- `handover`: moving a job to the worker caching its conversation or serving its model;
- `output`: one `RunningJob` record per running job, and the output streams written;
- `presence`: the worker's announcement and metrics, each event counted once;
- `cli`: `python -m inference.worker`.

Queue semantics: jobs are read through a consumer group and acknowledged only after
their final chunk is written. While a job runs, the worker re-claims it every few
seconds, which keeps its idle time low; a job whose worker died goes idle and another
worker claims it (`XAUTOCLAIM`) and resumes it after what was already written. A job
delivered more than `max_deliveries` times goes to the dead-letter stream and its
requester gets a clear error.

Conversation affinity: a worker records itself as the holder of a finished job's
conversation (`affinity_key`). A worker that reads a new job whose conversation another
live worker with a free slot holds moves the entry into that worker's pending list
(`XCLAIM`) and wakes it; that worker reuses the cached prefix instead of evaluating the
whole history again. Only entries read fresh from the stream are handed over, so a job
moves at most once; one handed to a worker that dies is recovered like any other.

Run standalone with `python -m inference.worker --model PATH --slots N`; the app runs
one as its child process (`inference.embedded.EmbeddedWorker`) when no separate pool is
configured. In-process (tests, benchmarks): `Worker(config, runner_factory).start()`.
"""

from inference.worker.config import DEFAULT_HOST_CACHE_MB, RunnerFactory, WorkerConfig
from inference.worker.loop import Worker, WorkerStartError
from inference.worker.queue import ensure_group

__all__ = [
    "DEFAULT_HOST_CACHE_MB",
    "RunnerFactory",
    "Worker",
    "WorkerConfig",
    "WorkerStartError",
    "ensure_group",
]
