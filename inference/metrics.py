"""Prometheus metrics of one worker: queue, latency, throughput, batching, cache use,
handovers between workers.

Each worker owns its registry (not the process-wide default), so several workers in one
process, as in the tests, do not collide. `inference.status_http` serves it over HTTP.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.queue_wait = Histogram(
            "inference_queue_wait_seconds",
            "Submission to admission of a job",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "inference_time_to_first_token_seconds",
            "Admission to a job's first output",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.step_seconds = Histogram(
            "inference_step_seconds",
            "One batched decode step: the inter-token latency of every running job",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_tokens = Histogram(
            "inference_batch_tokens",
            "Tokens in one decode batch",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.prompt_tokens = Counter(
            "inference_prompt_tokens", "Prompt tokens of finished jobs", registry=registry
        )
        self.reused_prompt_tokens = Counter(
            "inference_reused_prompt_tokens",
            "Prompt tokens found in the cache (prefix reuse) instead of evaluated",
            registry=registry,
        )
        self.restored_prompt_tokens = Counter(
            "inference_restored_prompt_tokens",
            "Prompt tokens restored from states saved in host RAM (part of the reused ones)",
            registry=registry,
        )
        self.generated_tokens = Counter(
            "inference_generated_tokens", "Tokens generated", registry=registry
        )
        self.jobs = Counter(
            "inference_jobs", "Finished jobs by outcome", ["outcome"], registry=registry
        )
        self.handovers = Counter(
            "inference_handovers",
            "Jobs handed to the worker caching their conversation (sent) or taken from "
            "another worker (received)",
            ["direction"],
            registry=registry,
        )
        self.active_sequences = Gauge(
            "inference_active_sequences", "Sequences generating now", registry=registry
        )
        self.kv_cells_used = Gauge(
            "inference_kv_cells_used_ratio",
            "Share of the context's cells holding cached tokens",
            registry=registry,
        )
        self.pending_jobs = Gauge(
            "inference_pending_jobs", "Jobs taken by some worker, not finished", registry=registry
        )
        self.dead_letter_jobs = Gauge(
            "inference_dead_letter_jobs", "Jobs in the dead-letter stream", registry=registry
        )
