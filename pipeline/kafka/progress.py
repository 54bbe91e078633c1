"""How far the status projection has come, and fetching paused and resumed per topic.

`FoldWatch` is the status stage's progress: the last status offset folded per
partition, and listeners told which messages' states just changed. A stage waiting on
a message's state (provider events, `pipeline.domain.parking`) listens instead of
polling, and knows when the projection has caught up with a point in the status topic.

`ConsumerControl` is the little of the Faust consumer such a stage needs: the status
topic's high watermark, and pausing a topic's partitions (Kafka flow control: the
fetcher skips them, every other topic goes on) while too many of its records wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from faust.types import TP

__all__ = ["ConsumerControl", "FoldWatch", "Listener"]

log = structlog.get_logger("herald")

Listener = Callable[[Iterable[str]], None]


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
        folded = self.positions.get(partition)
        if committed is not None:
            folded = max(folded if folded is not None else -1, committed - 1)
        return end is None or folded is None or folded >= end - 1


@dataclass
class ConsumerControl:
    """High watermarks and per-topic pause/resume on the Faust app's consumer."""

    app: Any
    paused: set[str] = field(default_factory=set)

    def end_offset(self, topic: str, partition: int) -> int | None:
        """The offset the next record of the partition will get, as last fetched."""
        try:
            end = self.app.consumer.highwater(TP(topic, partition))
        except Exception:  # not assigned here (any more), or the consumer is not up
            return None
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
