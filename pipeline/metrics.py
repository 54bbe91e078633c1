"""Prometheus metrics, in a registry owned by the worker (no global state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pipeline.heap import HeapFigures

__all__ = ["Metrics"]


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.notifications = Counter(
            "herald_notifications", "Status changes emitted, by stage and status",
            ["stage", "status"], registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            "herald_dead_letters", "Records sent to the dead letter topic",
            ["stage", "reason"], registry=r,
        )  # fmt: skip
        self.idempotency_unchecked = Counter(
            "herald_idempotency_unchecked", "Client-chosen ids an ingress accepted without the "
            "worker's idempotency check (no answer within HERALD_WORKER_CHECK_TIMEOUT)",
            registry=r,
        )  # fmt: skip
        self.forwarded = Counter(
            "herald_forwarded", "Reads a worker's door asked of the worker that owns the key's "
            "partition (state, preferences)", ["what"], registry=r,
        )  # fmt: skip
        self.consent_unchecked = Counter(
            "herald_consent_unchecked", "POSTs a worker's door accepted without the opted-out "
            "check, the worker owning the user's preferences not answering in "
            "HERALD_PEER_CHECK_TIMEOUT (the pipeline blocks them instead)", registry=r,
        )  # fmt: skip
        self.duplicates = Counter(
            "herald_duplicates", "Records skipped as already processed", ["stage"], registry=r
        )
        self.in_doubt = Counter(
            "herald_in_doubt", "Sends in doubt (in flight when a worker died, or unanswered by the "
            "provider), by what was done",
            ["stage", "action"], registry=r,
        )  # fmt: skip
        self.provider_requests = Counter(
            "herald_provider_requests", "Provider calls by outcome",
            ["provider", "outcome"], registry=r,
        )  # fmt: skip
        self.provider_seconds = Histogram(
            "herald_provider_request_seconds", "Provider call latency", ["provider"],
            registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )  # fmt: skip
        self.http_requests = Counter(
            "herald_http_requests", "HTTP API requests", ["route", "code"], registry=r
        )
        self.http_seconds = Histogram(
            "herald_http_request_seconds", "HTTP API latency", ["route"], registry=r
        )
        self.batch_size = Histogram(
            "herald_provider_batch_size", "Messages per batch API call", ["provider"],
            registry=r, buckets=(2, 5, 10, 25, 50, 100, 250, 500, 1000),
        )  # fmt: skip
        self.rate_limited = Counter(
            "herald_rate_limited", "Sends that waited for a provider's rate budget",
            ["provider"], registry=r,
        )  # fmt: skip
        self.circuit_state = Gauge(
            "herald_circuit_state", "Circuit per provider: 0 closed, 1 open, 2 half-open",
            ["provider"], registry=r,
        )  # fmt: skip
        self.webhooks_refused = Counter(
            "herald_webhooks_refused", "Provider webhooks refused at the door (receiver-off, "
            "bad-signature, stale-signature)", ["provider", "reason"], registry=r,
        )  # fmt: skip
        self.provider_events_dropped = Counter(
            "herald_provider_events_dropped", "Signed provider events that changed nothing "
            "(unknown-message, provider-mismatch, provider-message-id-mismatch, "
            "duplicate-event, send-not-recorded, no-join-key)", ["provider", "reason"], registry=r,
        )  # fmt: skip
        self.provider_event_wait = Histogram(
            "herald_provider_event_wait_seconds", "How long provider events that arrived "
            "before their send was in the state waited for it", ["provider"], registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
        )  # fmt: skip
        self.provider_events_parked = Gauge(
            "herald_provider_events_parked", "Provider events waiting (unacknowledged) for "
            "their send to reach the state", registry=r,
        )  # fmt: skip
        self.ready = Gauge("herald_worker_ready", "1 when the worker serves traffic", registry=r)
        self.malloc_bytes = Gauge(
            "herald_malloc_bytes", "glibc malloc: bytes in use, and bytes held free in its "
            "arenas (free growing while in use stays flat is fragmentation, not a leak)",
            ["part"], registry=r,
        )  # fmt: skip
        self.python_blocks = Gauge(
            "herald_python_allocated_blocks", "Small Python objects alive (pymalloc blocks)",
            registry=r,
        )  # fmt: skip
        self.rocksdb_bytes = Gauge(
            "herald_rocksdb_memory_bytes", "RocksDB memory of the tables' shared budget: "
            "memtables (all databases) and cache (blocks read plus the memtables charged "
            "to it)", ["part"], registry=r,
        )  # fmt: skip

    def watch_heap(self, figures: Callable[[], HeapFigures]) -> None:
        """Read malloc's figures when the metrics are scraped."""
        self.malloc_bytes.labels("in_use").set_function(lambda: figures().in_use)
        self.malloc_bytes.labels("free").set_function(lambda: figures().free)
        self.python_blocks.set_function(lambda: figures().python_blocks)

    def watch_rocksdb(self, *, memtables: Callable[[], float], cache: Callable[[], float]) -> None:
        """Read the tables' RocksDB memory when the metrics are scraped."""
        self.rocksdb_bytes.labels("memtables").set_function(memtables)
        self.rocksdb_bytes.labels("cache").set_function(cache)

    def render(self) -> bytes:
        return generate_latest(self.registry)
