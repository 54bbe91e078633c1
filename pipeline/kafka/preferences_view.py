"""The ingress's view of `herald.users.preferences`: every partition, from the beginning.

The topic is compacted and keyed by `tenant:userId`, so the latest record per key
is the user's consent. An ingress has no tables (no Faust), so it reads the whole
topic into memory with a consumer of its own (assigned, not in a group) and keeps
reading; `caught_up` is true once it has read up to the end offsets it found when
it started, which is when its answer of 403 opted-out matches the worker's.
The records are checked as the worker's preferences stage checks them (a key that
is not the record's own tenant:userId is ignored here; the worker dead-letters it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.domain.tenancy import check_keyed_record, check_user_key
from pipeline.exceptions import DecodeError
from pipeline.kafka.catalog import PREFERENCES
from pipeline.kafka.codecs import AvroCodec

__all__ = ["PreferencesView"]

log = structlog.get_logger("herald.ingress")
_USER_KEY_RULE = "tenant:userId"


class PreferencesView:
    """Latest preferences per `tenant:userId`, fed by `apply` (and `run`, from Kafka)."""

    def __init__(self, codec: AvroCodec, topic: str = PREFERENCES) -> None:
        self.codec = codec
        self.topic = topic
        self.records: dict[str, dict[str, Any]] = {}
        self._ends: dict[int, int] | None = None  # partition -> end offset found at start
        self._positions: dict[int, int] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def apply(self, key: bytes | str | None, value: bytes | None) -> None:
        """One record of the topic: store its preferences, or erase them for a tombstone."""
        text = key.decode(errors="replace") if isinstance(key, bytes) else key
        if value is None:
            if check_user_key(text) is None and text is not None:
                self.records.pop(text, None)
            return
        try:
            record = self.codec.decode("UserPreferences", value)
        except DecodeError:
            return  # the worker dead-letters it
        if check_keyed_record(_USER_KEY_RULE, record, text) is None and text is not None:
            self.records[text] = record

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
            client_id="herald-ingress-preferences",
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
