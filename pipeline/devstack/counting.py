"""What a drill round counts: statuses of its messages on the status topic, and their
arrivals at the provider simulator (per recipient and per provider).

Kept apart from `pipeline.devstack.drill` (which runs the round) so either can change
alone: the kill drill, the fault tests and `herald bench kill` all count this way.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
from confluent_kafka import Consumer, TopicPartition

from pipeline.kafka.catalog import STATUS
from pipeline.kafka.codecs import AvroCodec

__all__ = ["SimulatorCount", "StatusWatch"]


class StatusWatch:
    """Follows the status topic from its end: which drill messages were named in doubt,
    which of those the pipeline did not send again (SENT in doubt, no provider: the
    priority's policy), and which reached a dead end (DLQ, FAILED)."""

    def __init__(self, bootstrap: str, codec: AvroCodec) -> None:
        self.codec = codec
        self.in_doubt: set[str] = set()
        self.retried: set[str] = set()  # had a RETRY (a provider failed, tried again)
        self.not_resent: set[str] = set()
        self.last: dict[str, str] = {}  # message id -> its latest status (for diagnosis)
        self.dead_ends: dict[str, str] = {}
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"drill-{uuid.uuid4().hex[:8]}",
             "enable.auto.commit": False, "fetch.wait.max.ms": 100}
        )  # fmt: skip
        parts = self.consumer.list_topics(STATUS, timeout=10).topics[STATUS].partitions
        assignment = []
        for p in parts:
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(STATUS, p), timeout=10)
            assignment.append(TopicPartition(STATUS, p, high))
        self.consumer.assign(assignment)

    def poll(self, ids: set[str]) -> None:
        while True:
            batch = self.consumer.consume(num_messages=5000, timeout=0.2)
            if not batch:
                return
            for msg in batch:
                if msg.error():
                    continue
                status = self.codec.decode("NotificationStatus", msg.value())
                mid = status["messageId"]
                if mid not in ids:
                    continue
                self.last[mid] = status["status"]
                if status["status"] == "RETRY":
                    self.retried.add(mid)
                if status.get("inDoubt"):
                    self.in_doubt.add(mid)
                    # SENT in doubt with no provider's id: not sent again by its policy.
                    if status["status"] == "SENT" and not status.get("providerMessageId"):
                        self.not_resent.add(mid)
                if status["status"] in ("DLQ", "FAILED"):
                    self.dead_ends[mid] = f"{status['status']}: {status.get('error')}"

    def close(self) -> None:
        self.consumer.close()


@dataclass
class SimulatorCount:
    """Messages per recipient at the simulator, read incrementally (`?after=` cursor)."""

    sim_url: str
    recipients: set[str]
    counts: Counter[str] = field(default_factory=Counter)
    providers: Counter[str] = field(default_factory=Counter)  # arrivals per provider
    cursor: int = 0

    def refresh(self, *, count: bool = True) -> Counter[str]:
        """Read what arrived since the last call; `count=False` only moves the cursor."""
        url = f"{self.sim_url}/_sim/messages"
        new = httpx.get(url, params={"after": self.cursor}, timeout=30).json()
        for m in new:
            self.cursor = max(self.cursor, m["seq"])
            if count and m["to"] in self.recipients:
                self.counts[m["to"]] += 1
                self.providers[m["provider"]] += 1
        return self.counts
