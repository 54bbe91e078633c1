"""A process's own copy of a compacted topic: every partition, from the beginning.

Some topics are read whole by every process rather than split across a consumer
group: the ingress (no tables, no Faust) keeps the preferences this way, and every
worker and ingress keeps the tenants' saved templates (`herald.templates`: few records,
needed for any message on any partition). A view reads with a consumer of its own
(assigned, not in a group), applies each record as it comes (`apply`, the subclass's),
and keeps reading; `caught_up` is true once it has read up to the end offsets it found
when it started, which is when its answers match what was written before it started.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["CompactedView"]


class CompactedView:
    """Reads `topic` whole and for ever; a subclass says what one record does (`apply`)."""

    topic: str
    client_id: str = "herald-view"

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._ends: dict[int, int] | None = None  # partition -> end offset found at start
        self._positions: dict[int, int] = {}

    def apply(self, key: bytes | str | None, value: bytes | None) -> None:
        """One record of the topic (None value: a tombstone)."""
        raise NotImplementedError

    def seen(self, partition: int, offset: int) -> None:
        """Record that `offset` of `partition` was read (for `caught_up`)."""
        self._positions[partition] = offset + 1

    def starting(self, ends: dict[int, int]) -> None:
        """The end offsets when reading began: caught up once they are reached."""
        self._ends = dict(ends)

    @property
    def caught_up(self) -> bool:
        if self._ends is None:
            return False
        return all(self._positions.get(p, 0) >= end for p, end in self._ends.items())

    async def run(self, bootstrap: str, started: asyncio.Event | None = None) -> None:
        """Read the topic for ever (cancel to stop): every partition, from the beginning."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
            client_id=self.client_id,
        )  # fmt: skip
        await consumer.start()
        try:
            # An assigned consumer has no subscription, so its own metadata does not
            # cover the topic: ask the cluster for everything.
            metadata = await consumer._client.fetch_all_metadata()
            partitions = metadata.partitions_for_topic(self.topic)
            if not partitions:
                raise RuntimeError(f"topic {self.topic} not found (run `herald topics apply`)")
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            self.starting({tp.partition: end for tp, end in ends.items()})
            if started is not None:
                started.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                for tp, messages in batches.items():
                    for msg in messages:
                        self.apply(msg.key, msg.value)
                        self.seen(tp.partition, msg.offset)
                if not self.caught_up:  # compaction and markers leave gaps: ask the position
                    for tp in tps:
                        self._positions[tp.partition] = await consumer.position(tp)
        finally:
            await consumer.stop()
