"""Where a partition ends, asked of the broker directly: a read's barrier needs it now.

A GET that does not find a message (or a profile) asks where the partition ends before it
may answer 404 (`pipeline.kafka.progress.StateBarrier`). Asked through the Faust app's
consumer, the question waits its turn on the consumer's thread, behind fetches that
wait for data: about 1 to 1.5 s per absent read, measured through the door. A consumer
of our own (no group, nothing assigned, nothing fetched) sends Kafka's ListOffsets at
once: a few milliseconds on loopback.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["EndOffsets"]


class EndOffsets:
    """The broker's end offsets, on a consumer started on first use (on the running loop)."""

    def __init__(self, bootstrap: str, client_id: str = "herald-end-offsets") -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._starting = asyncio.Lock()
        self._topics: set[str] = set()

    async def end_offset(self, topic: str, partition: int) -> int | None:
        """The offset the partition's next record will get (None if the broker has no
        such partition). Raises what the client raises when the broker does not answer."""
        consumer = await self._started()
        if topic not in self._topics:  # a consumer without a subscription tracks no topic
            await consumer._client.add_topic(topic)
            self._topics.add(topic)
        tp = TopicPartition(topic, partition)
        ends = await consumer.end_offsets([tp])
        end = ends.get(tp)
        return int(end) if end is not None else None

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def _started(self) -> AIOKafkaConsumer:
        async with self._starting:
            if self._consumer is None:
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                    client_id=self.client_id,
                )  # fmt: skip
                await consumer.start()
                self._consumer = consumer
            return self._consumer
