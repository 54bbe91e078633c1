"""How far the status projection has come, and fetching paused and resumed per topic.

`FoldWatch` is the status stage's progress: the last status offset folded per
partition, and listeners told which messages' states just changed. A stage waiting on
a message's state (provider events, `pipeline.domain.parking`) listens instead of
polling, and knows when the projection has caught up with a point in the status topic.

`ConsumerControl` is the little of the Faust consumer such a stage needs: the status
topic's high watermark, and pausing a topic's partitions (Kafka flow control: the
fetcher skips them, every other topic goes on) while too many of its records wait.

`StateBarrier` gives reads their writes back: the door writes a message's PENDING
status before it answers 202, so once the projection has folded its status partition
up to the end offset the broker gives at the time of a GET, a state that is still
absent is truly absent (404); until then the GET waits instead of answering a false 404.
The profiles stage reports its progress to a `FoldWatch` of its own, and a second
barrier on `herald.users.profiles` gives a GET of a profile the PUT answered before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from faust.types import TP

from pipeline.exceptions import StateBehind
from pipeline.kafka.offsets import EndOffsets
from pipeline.kafka.owners import partition_of

__all__ = [
    "BARRIER_POLL_S", "END_OFFSET_TIMEOUT_S", "ConsumerControl", "FoldWatch", "Listener",
    "StateBarrier",
]  # fmt: skip

log = structlog.get_logger("herald")

Listener = Callable[[Iterable[str]], None]
END_OFFSET_TIMEOUT_S = 5.0  # how long a read waits for the broker to say where a partition ends
BARRIER_POLL_S = 0.02  # how often `StateBarrier.wait` looks at the fold's progress


@dataclass
class FoldWatch:
    """The status stage's progress per partition, and who wants to hear of it."""

    positions: dict[int, int] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)

    def listen(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def folded(self, offsets: dict[int, int], keys: Iterable[str]) -> None:
        """The states of `keys` now include the status records up to `offsets`
        (partition -> last offset folded)."""
        for partition, offset in offsets.items():
            if offset > self.positions.get(partition, -1):
                self.positions[partition] = offset
        if self.listeners:
            changed = list(keys)
            for listener in self.listeners:
                listener(changed)

    def caught_up(self, partition: int, end: int | None, committed: int | None = None) -> bool:
        """Every status record before offset `end` of `partition` is folded: by this
        worker, or by whoever committed up to `committed` (the group's committed offset:
        a partition with nothing new, or one another worker folded while it held it,
        leaving this worker's own position behind). Unknown counts as caught up."""
        folded = self.folded_through(partition, committed)
        return end is None or folded is None or folded >= end - 1

    def folded_through(self, partition: int, committed: int | None = None) -> int | None:
        """The last offset of `partition` known folded: this worker's own position, or the
        group's committed offset less one, whichever is further; None if neither is known."""
        folded = self.positions.get(partition)
        if committed is not None:
            folded = max(folded if folded is not None else -1, committed - 1)
        return folded


@dataclass
class ConsumerControl:
    """High watermarks and per-topic pause/resume on the Faust app's consumer; with
    `offsets`, the broker's end offsets are asked on a consumer of their own
    (`pipeline.kafka.offsets`: at once, not behind the Faust consumer's fetches)."""

    app: Any
    paused: set[str] = field(default_factory=set)
    offsets: EndOffsets | None = None

    def end_offset(self, topic: str, partition: int) -> int | None:
        """The offset the next record of the partition will get, as last fetched."""
        try:
            end = self.app.consumer.highwater(TP(topic, partition))
        except Exception:  # not assigned here (any more), or the consumer is not up
            return None
        return int(end) if end is not None else None

    async def end_offset_now(self, topic: str, partition: int) -> int | None:
        """The offset the next record of the partition will get, asked of the broker now
        (any partition, assigned here or not); None when the broker does not answer."""
        tp = TP(topic, partition)
        try:
            async with asyncio.timeout(END_OFFSET_TIMEOUT_S):
                if self.offsets is not None:
                    return await self.offsets.end_offset(topic, partition)
                ends = await self.app.consumer.highwaters(tp)
        except Exception as exc:  # the consumer is not up, or the broker is away
            log.info(
                "end-offset-unknown", topic=topic, partition=partition, error=type(exc).__name__
            )
            return None
        end = ends.get(tp)
        return int(end) if end is not None else None

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset of the partition, as this consumer knows it."""
        try:
            offset = self.app.consumer._committed_offset.get(TP(topic, partition))
        except Exception:  # the consumer is not up
            return None
        return int(offset) if offset is not None else None

    def pause(self, topic: str) -> None:
        """Stop fetching `topic` (again: partitions assigned since are paused too)."""
        self.app.consumer.pause_partitions(self._partitions(topic))
        if topic not in self.paused:
            self.paused.add(topic)
            log.info("fetch-paused", topic=topic)

    def resume(self, topic: str) -> None:
        if topic in self.paused:
            self.paused.discard(topic)
            self.app.consumer.resume_partitions(self._partitions(topic))
            log.info("fetch-resumed", topic=topic)

    def _partitions(self, topic: str) -> list[TP]:
        return [tp for tp in self.app.consumer.assignment() if tp.topic == topic]


@dataclass(frozen=True)
class StateBarrier:
    """Whether the state table has folded every status record the status topic held at
    a moment: `mark` takes the partition's end offset from the broker, `passed` says when
    the projection (this worker's, or the group's committed offset) has reached it."""

    watch: FoldWatch
    consumer: ConsumerControl
    topic: str
    partitions: int

    async def mark(self, key: str) -> tuple[int, int] | None:
        """(partition, end offset now) of the status key's partition; None if unknown."""
        partition = partition_of(key, self.partitions)
        end = await self.consumer.end_offset_now(self.topic, partition)
        return None if end is None else (partition, end)

    def passed(self, mark: tuple[int, int]) -> bool:
        """Every record before the mark folded. Unlike `FoldWatch.caught_up`, a partition
        this worker has not folded yet, with no committed offset, has not passed it."""
        partition, end = mark
        folded = self.watch.folded_through(
            partition, self.consumer.committed(self.topic, partition)
        )
        return (folded if folded is not None else -1) >= end - 1

    async def wait(self, key: str, timeout_s: float) -> None:
        """Return once every record `key`'s partition held now is folded (a table read
        then sees the writes acknowledged before it). StateBehind past `timeout_s`, or
        when the broker does not say where the partition ends: never a stale answer."""
        mark = await self.mark(key)
        if mark is None:
            raise StateBehind(f"the broker did not say where {self.topic} ends")
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.passed(mark):
            if asyncio.get_running_loop().time() >= deadline:
                raise StateBehind(f"the table has not caught up with {self.topic}")
            await asyncio.sleep(BARRIER_POLL_S)
