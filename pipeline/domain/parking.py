"""Provider events waiting for their message's state: the parking lot (pure, clock passed in).

A provider webhook can overtake the status projection: the event names a send whose
SENT is not folded into the message's state yet. Such an event must neither be
judged now (it would be dropped) nor be waited for in place (a stage that waits holds
up Faust's one fetch loop, and with it the status topic it waits for: the worker
livelocks). So it is parked here, unacknowledged, and the provider-events stage
looks at it again when the status stage folds its message (`changed`) or when its
time is up (its deadline). Past its wait, an event whose verdict needs the projection
to reach a status offset waits for exactly that (`park_until_folded`, `folded`): it is
not looked at again before, so a projection minutes behind costs nothing per event. A
parked event's offset is not committed, so a crash or a rebalance loses nothing: the
partition is read again from before it.

Bounded: the lot says when it is `full` (the stage then stops fetching provider
events until it has drained to half) and every event has a deadline.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PARKING_MAX", "Parked", "ParkingLot"]

# Events a worker keeps parked before it pauses the provider-events partitions
# (about 2 KB each with their Faust message: some 20 MB at most).
PARKING_MAX = 10_000


@dataclass(eq=False)
class Parked:
    """One waiting event: its message key, the Faust event, its decoded record, the
    partition (of both topics: same key, same partition count), when it was parked,
    when it is due, and (once due) the status offset its verdict waits for and how far
    the projection had come when it last looked."""

    key: str
    event: Any
    record: dict[str, Any]
    partition: int
    since: float
    due: float
    target: int | None = None
    position: int | None = None  # the projection's position when it was last looked at
    seq: int = 0


@dataclass
class ParkingLot:
    """Parked events by message key and by deadline."""

    max_size: int = PARKING_MAX
    _by_key: dict[str, list[Parked]] = field(default_factory=dict)
    _deadlines: list[tuple[float, int, Parked]] = field(default_factory=list)
    _ready: set[str] = field(default_factory=set)
    # Per status partition, the events waiting for the projection to reach an offset.
    _fold_waits: dict[int, list[tuple[int, int, Parked]]] = field(default_factory=dict)
    _caught_up: list[Parked] = field(default_factory=list)
    _count: itertools.count[int] = field(default_factory=itertools.count)
    _size: int = 0

    def __len__(self) -> int:
        return self._size

    @property
    def full(self) -> bool:
        return self._size >= self.max_size

    @property
    def drained(self) -> bool:
        """Down to half: a paused stage may fetch again."""
        return self._size <= self.max_size // 2

    def park(self, parked: Parked) -> None:
        parked.seq = next(self._count)
        self._by_key.setdefault(parked.key, []).append(parked)
        heapq.heappush(self._deadlines, (parked.due, parked.seq, parked))
        self._size += 1

    def park_until_folded(self, parked: Parked, target: int, deadline: float) -> None:
        """Park an event until the projection of its partition has folded the status
        records before offset `target` (`folded`), or until `deadline` at the latest."""
        parked.target, parked.due = target, deadline
        self.park(parked)
        heapq.heappush(self._fold_waits.setdefault(parked.partition, []),
                       (target, parked.seq, parked))  # fmt: skip

    def folded(self, positions: Mapping[int, int]) -> bool:
        """The projection has folded partition -> offset: the events waiting for it are
        due. True when any became due."""
        hit = False
        for partition, position in positions.items():
            waits = self._fold_waits.get(partition)
            while waits and waits[0][0] - 1 <= position:
                _target, seq, parked = heapq.heappop(waits)
                if self._live(seq, parked):
                    self._remove(parked)
                    self._caught_up.append(parked)
                    hit = True
        return hit

    def changed(self, keys: Iterable[str]) -> bool:
        """The states of `keys` changed: their events are ready for another look.
        True when any of them had an event parked."""
        hit = False
        for key in keys:
            if key in self._by_key:
                self._ready.add(key)
                hit = True
        return hit

    def release(self, now: float) -> tuple[list[Parked], list[Parked]]:
        """Take out (ready, due): the events whose state changed, in the order they were
        parked per message, and the others whose deadline passed by `now` or whose
        projection caught up."""
        ready = [p for key in self._ready for p in self._by_key.pop(key, [])]
        self._ready.clear()
        due, self._caught_up = self._caught_up, []
        while self._deadlines and self._deadlines[0][0] <= now:
            _due, seq, parked = heapq.heappop(self._deadlines)
            if self._live(seq, parked):
                self._remove(parked)
                due.append(parked)
        self._size -= len(ready) + len(due)
        return ready, due

    def next_due(self) -> float | None:
        """The earliest deadline of an event still parked (None when the lot is empty)."""
        while self._deadlines and not self._live(self._deadlines[0][1], self._deadlines[0][2]):
            heapq.heappop(self._deadlines)  # released or forgotten earlier: lazily dropped
        return self._deadlines[0][0] if self._deadlines else None

    def forget(self, keep: Any) -> int:
        """Drop every parked event for which `keep(event)` is false (fetched before a
        rebalance: read again by the partition's owner); how many were dropped."""
        dropped = 0
        for key in list(self._by_key):
            kept = [p for p in self._by_key[key] if keep(p.event)]
            dropped += len(self._by_key[key]) - len(kept)
            if kept:
                self._by_key[key] = kept
            else:
                del self._by_key[key]
                self._ready.discard(key)
        caught_up = [p for p in self._caught_up if keep(p.event)]
        dropped += len(self._caught_up) - len(caught_up)
        self._caught_up = caught_up
        self._size -= dropped
        return dropped

    def _live(self, seq: int, parked: Parked) -> bool:
        """A deadline entry still stands: its event is parked, and not parked again since."""
        return parked.seq == seq and any(p is parked for p in self._by_key.get(parked.key, ()))

    def _remove(self, parked: Parked) -> None:
        waiting = self._by_key[parked.key]
        waiting.remove(parked)
        if not waiting:
            del self._by_key[parked.key]
            self._ready.discard(parked.key)
