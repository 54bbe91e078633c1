"""Following requests through the running pipeline: produce them, then read the status
topic until each messageId is SENT or at a dead end, keeping every timestamp the
statistics need; and waiting until the worker has committed its whole backlog, so one
run's leftovers never slow the next.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, Producer, TopicPartition

from bench.pipeline.measure import BenchError, log, now_ms
from bench.pipeline.records import LINGER_MS, TENANT, Request, produce_one
from pipeline.domain.routing import CHANNELS, LANES
from pipeline.kafka.catalog import PREFERENCES, REQUESTS, STATUS, dispatch_topic
from pipeline.kafka.codecs import AvroCodec

__all__ = ["DEAD_ENDS", "Tracking", "run_pipeline", "status_consumer", "wait_worker_idle"]

# Statuses after which a message will never become SENT in this pipeline version.
DEAD_ENDS = {"FAILED", "DLQ", "BLOCKED", "CANCELLED", "BOUNCED"}


@dataclass
class Tracking:
    """What one pipeline run saw: produce times and status timestamps per messageId."""

    produced_ms: dict[str, float] = field(default_factory=dict)
    status_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    dead_ends: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    timestamp_types: Counter[str] = field(default_factory=Counter)
    sent_receive_ms: list[float] = field(default_factory=list)


def status_consumer(bootstrap: str) -> Consumer:
    """A consumer of every status partition, positioned at the current end offsets."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-status-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
        }
    )
    parts = consumer.list_topics(STATUS, timeout=10).topics[STATUS].partitions
    assignment = []
    for p in parts:
        _low, high = consumer.get_watermark_offsets(TopicPartition(STATUS, p), timeout=10)
        assignment.append(TopicPartition(STATUS, p, high))
    consumer.assign(assignment)
    consumer.poll(0)
    return consumer


def wait_worker_idle(bootstrap: str, group: str, timeout: float) -> float:
    """Wait until the worker's consumer group has committed every record of its source
    topics (nothing queued inside the worker); returns the seconds it took."""
    topics = [REQUESTS, STATUS, PREFERENCES] + [
        dispatch_topic(c, lane) for c in CHANNELS for lane in LANES
    ]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})  # fmt: skip
    start = time.monotonic()
    try:  # never subscribes: it only reads the group's committed offsets
        md = consumer.list_topics(timeout=10).topics
        tps = [TopicPartition(t, p) for t in topics for p in md[t].partitions]
        while True:
            ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
            done = consumer.committed(tps, timeout=10)
            lag = sum(max(0, end - max(c.offset, 0)) for end, c in zip(ends, done, strict=True))
            if lag == 0:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise BenchError(f"the worker still lags {lag} records after {timeout:.0f}s")
            time.sleep(0.25)
    finally:
        consumer.close()


def run_pipeline(
    bootstrap: str,
    codec: AvroCodec,
    requests: Sequence[Request],
    *,
    rate: float | None,
    timeout: float,
    label: str,
    on_tick: Callable[[], None] | None = None,
    track: Tracking | None = None,
) -> Tracking:
    """Produce `requests` (at `rate` per second, or as fast as possible) and follow them
    on the status topic until each is SENT or at a dead end. Pass `track` to watch the
    run from `on_tick` (the soak samples RSS against the SENT count so far)."""
    track = Tracking() if track is None else track
    pending = {r.message_id for r in requests}
    track.status_ms = {r.message_id: {} for r in requests}
    consumer = status_consumer(bootstrap)  # before the first produce
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": LINGER_MS, "acks": "all"})
    try:
        producer.list_topics(REQUESTS, timeout=10)
        interval = 1.0 / rate if rate else 0.0
        start = time.monotonic()
        deadline = start + timeout
        next_report = start + 5.0
        sent = i = 0
        flushed = False
        while pending:
            mono = time.monotonic()
            if mono > deadline:
                raise BenchError(
                    f"{label}: {len(pending)} of {len(requests)} not SENT after {timeout:.0f}s "
                    f"(produced {i}, statuses seen {dict(track.counts)})"
                )
            if mono > next_report:
                log(
                    f"{label}: produced {i}/{len(requests)}, SENT {sent}, "
                    f"dead ends {len(track.dead_ends)}"
                )
                next_report = mono + 5.0
                if on_tick is not None:
                    on_tick()
            if i < len(requests):
                wait = start + i * interval - mono
                if wait <= 0:
                    req = requests[i]
                    track.produced_ms[req.message_id] = now_ms()
                    produce_one(producer, REQUESTS, req.key, req.value, deadline)
                    producer.poll(0)
                    i += 1
                    continue
                poll_for = min(wait, 0.05)
            else:
                if not flushed:
                    left = producer.flush(max(1.0, deadline - time.monotonic()))
                    if left:
                        raise BenchError(f"{label}: {left} requests not delivered to {REQUESTS}")
                    flushed = True
                poll_for = 0.2
            for msg in consumer.consume(num_messages=1000, timeout=poll_for):
                if msg.error():
                    continue
                status = codec.decode("NotificationStatus", msg.value())
                mid = status["messageId"]
                if status["tenant"] != TENANT or mid not in track.status_ms:
                    continue
                ts_type, ts = msg.timestamp()
                track.timestamp_types[
                    "LogAppendTime" if ts_type == TIMESTAMP_LOG_APPEND_TIME else "CreateTime"
                ] += 1
                name = status["status"]
                track.counts[name] += 1
                track.status_ms[mid].setdefault(name, float(ts))
                if name == "SENT" and mid in pending:
                    pending.discard(mid)
                    sent += 1
                    track.sent_receive_ms.append(now_ms())
                elif name in DEAD_ENDS and mid in pending:
                    pending.discard(mid)
                    track.dead_ends[mid] = f"{name}: {status.get('error')}"
        if not flushed:
            producer.flush(10)
    finally:
        consumer.close()
    return track
