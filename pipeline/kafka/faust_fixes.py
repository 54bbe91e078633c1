"""Fixes to faust-streaming's consumer that Herald's delivery promise depends on.

Faust 0.15.3 (with aiokafka) can commit an offset past records that no agent ever
saw. Found with the kill drill (`herald bench kill`, `pipeline.devstack.drill`): two workers,
one killed with SIGKILL and restarted; after the rebalances, dispatches that were
never sent, never dead-lettered, their offsets committed all the same. Two causes:

1. **A batch fetched before a rebalance, delivered after it.** The consumer runs in
   a thread of its own; the event loop asks it for a batch, then hands the batch's
   records to the streams one by one. A rebalance seeks every partition back to its
   committed offset in between. Faust stamps those records with the new generation,
   so nothing drops them; it then reads the jump from the committed offset to the
   stale records as a gap in the log (as compaction or transaction markers leave),
   marks the offsets in between acknowledged, and the next commit moves past them.
2. **Partitions without a committed offset.** A seek to committed offsets leaves
   them where the last fetch left them, so records fetched and handed to a stream
   while its flow was stopped (during the rebalance) are skipped and never read
   again; and Faust keeps their stale read offset, so records read again from the
   start are dropped as "already read". The commit then moves past all of them.

The fixes: the consumer thread counts its seeks to committed offsets, with the
partitions each one moved, and stamps each fetch with the count at the moment it
returned (fetch and seek run in that thread one at a time, so the order is exact);
the event loop does not deliver a record whose partition a seek moved after its
fetch (the seek put the position back, so the fetcher reads it again). A seek to
committed offsets also puts every stream partition without a committed offset back
to its beginning (so its records are read again too) and forgets the read offsets
of the stream partitions. Applied by `create_app`, never at import time, only to
the pinned Faust version these were written against.

3. **The livelock detector crashes the worker during a rebalance.** Every few seconds
   Faust checks that each assigned partition's stream moves (`verify_event_path`,
   which only logs); it reads the partition's fetch position, and aiokafka asserts
   that the position is known. A partition assigned a moment ago has none until its
   committed offset is fetched, so the check raised AssertionError and the consumer,
   then the worker, crashed (seen with `herald up --workers 2`: two workers joining
   together). The fix skips the check of such a partition for that round.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import faust
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["FAUST_VERSION", "SeekEpoch", "apply", "fresh_only"]

FAUST_VERSION = "0.15.3"
_APPLIED = "_herald_fixes_applied"


class SeekEpoch:
    """Per consumer thread: seeks done, the partitions each one moved, and the count a
    fetch saw when it returned."""

    seeks = "_herald_seek_epoch"
    fetched = "_herald_fetch_epoch"
    moved = "_herald_moved_at"  # partition -> the seek count that last moved it

    @classmethod
    def of(cls, thread: Any) -> int:
        return int(getattr(thread, cls.seeks, 0))

    @classmethod
    def of_fetch(cls, thread: Any) -> int:
        return int(getattr(thread, cls.fetched, 0))

    @classmethod
    def moved_at(cls, thread: Any, tp: Any) -> int:
        return int(getattr(thread, cls.moved, {}).get(tp, 0))

    @classmethod
    def seeked(cls, thread: Any, moved: Iterable[Any]) -> None:
        epoch = cls.of(thread) + 1
        setattr(thread, cls.seeks, epoch)
        table = dict(getattr(thread, cls.moved, {}))
        table.update(dict.fromkeys(moved, epoch))
        setattr(thread, cls.moved, table)

    @classmethod
    def fetch_returned(cls, thread: Any) -> None:
        setattr(thread, cls.fetched, cls.of(thread))


def fresh_only(thread: Any, records: Callable[[], AsyncIterator[Any]]) -> AsyncIterator[Any]:
    """The `(tp, message)` records of one fetch, less those a later seek made stale.

    The fetch is stamped (in the consumer thread) when it returns; by the first
    record the stamp is set. A record of a partition that a seek moved after that
    stamp was fetched from a position the seek has replaced: the fetcher reads it
    again from the new position. A partition no seek moved (a seek to committed
    offsets leaves partitions without a committed offset where they are) keeps its
    records: nothing would read them again.
    """

    async def gen() -> AsyncIterator[Any]:
        stamp: int | None = None
        async for item in records():
            if stamp is None:
                stamp = SeekEpoch.of_fetch(thread)
            if SeekEpoch.moved_at(thread, item[0]) > stamp:
                continue  # fetched before the seek that moved its partition
            yield item

    return gen()


def apply() -> None:
    """Patch Faust's consumer once per process (idempotent)."""
    if faust.__version__ != FAUST_VERSION:
        raise RuntimeError(
            f"pipeline.kafka.faust_fixes was written for faust-streaming {FAUST_VERSION}, "
            f"found {faust.__version__}: re-check the consumer fixes before upgrading"
        )
    base: Any = faust_consumer.Consumer
    thread_cls: Any = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(base, _APPLIED, False):
        return
    getmany, perform_seek = base.getmany, base.perform_seek
    fetch_records = thread_cls._fetch_records

    def patched_getmany(self: Any, timeout: float) -> AsyncIterator[Any]:
        thread = getattr(self, "_thread", self)
        return fresh_only(thread, lambda: getmany(self, timeout))

    async def patched_perform_seek(self: Any) -> None:
        for tp in list(self._read_offset):
            if not self._is_changelog_tp(tp):
                self._read_offset.pop(tp, None)
        await perform_seek(self)

    # In the consumer thread, a fetch and a seek never overlap (its method queue runs
    # two calls at once, and aiokafka's seek moves one partition at a time): a fetch
    # returns either before a seek starts or after it has moved every partition.
    def exclusive(thread: Any) -> asyncio.Lock:
        lock = getattr(thread, "_herald_fetch_lock", None)
        if lock is None:
            lock = asyncio.Lock()  # first used in the consumer thread's loop
            thread._herald_fetch_lock = lock
        return lock

    async def patched_fetch_records(self: Any, *args: Any, **kwargs: Any) -> Any:
        async with exclusive(self):
            records = await fetch_records(self, *args, **kwargs)
            SeekEpoch.fetch_returned(self)
        return records

    async def patched_seek_to_committed(self: Any) -> Any:
        consumer = self._ensure_consumer()

        async def seek_and_count() -> Any:
            async with exclusive(self):
                result = await consumer.seek_to_committed()
                # aiokafka moves only the partitions with a committed offset above 0; a
                # stream partition without one goes back to its beginning (nothing of it
                # is known done), so that its records are read again as well.
                fresh = [
                    tp for tp, offset in result.items()
                    if not offset and not self.consumer._is_changelog_tp(tp)
                ]  # fmt: skip
                if fresh:
                    await consumer.seek_to_beginning(*fresh)
                SeekEpoch.seeked(self, [*(tp for tp, o in result.items() if o), *fresh])
            return result

        return await self.call_thread(seek_and_count)

    verify_event_path = thread_cls.verify_event_path

    def patched_verify_event_path(self: Any, now: float, tp: Any) -> Any:
        try:
            return verify_event_path(self, now, tp)
        except AssertionError:  # no fetch position yet: assigned a moment ago
            return None

    thread_cls.verify_event_path = patched_verify_event_path
    base.getmany = patched_getmany
    base.perform_seek = patched_perform_seek
    thread_cls._fetch_records = patched_fetch_records
    thread_cls.seek_to_committed = patched_seek_to_committed
    setattr(base, _APPLIED, True)
