"""What a notification costs the pipeline: Kafka records (every record produced on every
topic the worker writes, changelogs included: the sum of all end offsets before and
after a run, once the worker has committed its backlog and the provider webhooks have
come back) and worker CPU seconds per 1,000 notifications, measured from the first
produce until the worker is idle again, so the trailing status folding is counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench.pipeline.measure import cpu_seconds, ratio
from bench.pipeline.tracking import wait_worker_idle

__all__ = ["SETTLE_S", "measured_run", "settle", "total_records"]

SETTLE_S = 1.0  # after idle: the simulator's webhooks (HERALD_SIM_WEBHOOK_DELAY_MS) land


def total_records(bootstrap: str) -> dict[str, int]:
    """End offset summed over partitions, per topic: what has ever been written to it.
    Kafka's own topics (`__consumer_offsets`) and the raw runs' topics are left out."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-offsets"})
    try:
        out: dict[str, int] = {}
        for name, md in consumer.list_topics(timeout=10).topics.items():
            if name.startswith(("__", "bench.raw.")):
                continue
            out[name] = sum(
                consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                for p in md.partitions
            )
        return out
    finally:
        consumer.close()


def settle(bootstrap: str, group: str, timeout: float) -> float:
    """Wait for the worker to go idle, let late webhooks land, wait again; seconds taken."""
    start = time.monotonic()
    wait_worker_idle(bootstrap, group, timeout)
    time.sleep(SETTLE_S)
    wait_worker_idle(bootstrap, group, timeout)
    return time.monotonic() - start


def measured_run(
    bootstrap: str,
    group: str,
    pids: Mapping[str, int | None],
    timeout: float,
    run: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """`run()` (a throughput run returning its stats, with `sent`) between two idle
    points, with the records written per topic and the CPU of `pids` over that span."""
    settle(bootstrap, group, timeout)
    before = total_records(bootstrap)
    cpu0 = {k: cpu_seconds(v) for k, v in pids.items()}
    t0 = time.monotonic()
    stats = run()
    stats["drain_after_last_sent_s"] = settle(bootstrap, group, timeout)
    wall = time.monotonic() - t0
    cpu1 = {k: cpu_seconds(v) for k, v in pids.items()}
    after = total_records(bootstrap)
    per_topic = {t: n - before.get(t, 0) for t, n in after.items() if n - before.get(t, 0)}
    written = sum(per_topic.values())
    cpu = {k: cpu1[k] - c for k, c in cpu0.items() if c is not None and cpu1[k] is not None}  # type: ignore[operator]
    workers_cpu = sum(v for k, v in cpu.items() if k.startswith("worker"))
    sent = stats.get("sent") or 0
    stats["costs"] = {
        "span_s": wall,
        "cpu_seconds": cpu,
        "worker_cpu_s_per_1000": ratio(workers_cpu * 1000.0, sent),
        "records_written": written,
        "records_per_notification": ratio(float(written), sent),
        "records_by_topic": dict(sorted(per_topic.items(), key=lambda kv: -kv[1])),
    }
    return stats
