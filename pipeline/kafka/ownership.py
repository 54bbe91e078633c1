"""Ownership: whether this worker may still act on an event, and the batches in hand.

Faust hands a stream every record it fetched, also records fetched before a rebalance
that are handled after it. Once the rebalance is done (the consumer generation moved
on), the partition has been sought back to its committed offset, so this worker or the
partition's new owner reads such a record again: handling it here too would send it
twice, acknowledging it could commit an offset on the wrong side of the seek. A stale
event is therefore neither handled nor acknowledged (`pipeline.kafka.batches.Stage`
asks). While a rebalance is in progress nothing new starts and nothing is acknowledged;
the rebalance waits for the batch in hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

__all__ = ["Ownership"]

log = structlog.get_logger("herald")


@dataclass
class Ownership:
    """Whether this worker may still act on an event: the Faust app's group membership.

    It also counts the batches being handled (`working()`): a rebalance waits for them
    (`drain()`, from `HeraldApp`) before it hands the partitions over. So a partition's
    next owner finds everything the previous owner wrote (the send ledger's outcomes
    above all: an intent without an outcome then means a worker died during the call,
    never a rebalance), and no table is ever written by two workers at once (Faust
    keeps a store's position in its changelog from its own last write).

    A graceful stop (SIGTERM) does the same before Faust stops anything (`stop()`, from
    `HeraldApp.on_stop`): no new provider call, the calls in flight finish, and nothing
    is acknowledged any more (a batch whose calls were cut short is read again after the
    restart, where the send ledger knows what went out).
    """

    app: Any
    poll_s: float = 0.05
    in_flight: int = 0
    stopping: bool = False
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    async def settled(self) -> None:
        """Return once no rebalance is in progress (Faust sets a flag, it offers no event)."""
        while self.app.rebalancing:  # noqa: ASYNC110
            await asyncio.sleep(self.poll_s)

    @property
    def rebalancing(self) -> bool:
        """A rebalance or a stop is under way: make no new provider call."""
        return bool(self.app.rebalancing) or self.stopping

    def current(self, event: Any) -> bool:
        """Was `event` fetched in the current generation (not before the last rebalance)?"""
        return bool(event.message.generation_id == self.app.consumer_generation_id)

    async def keep(self, events: Sequence[Any]) -> list[Any]:
        """The events of `events` this worker still owns, once any rebalance is over."""
        await self.settled()
        if self.stopping:
            return []
        return [e for e in events if self.current(e)]

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        """A batch being handled, that a rebalance waits for.

        Enter it right after `keep()` (no await in between): a rebalance that starts
        later waits for it. Inside, never wait for a rebalance (that would deadlock);
        long work checks `rebalancing` and stops early, handing the rest back.
        """
        self.begin()
        try:
            yield
        finally:
            self.end()

    def begin(self) -> None:
        """`working()` entered without an await (a batch handed to a task of its own)."""
        self.in_flight += 1
        self._idle.clear()

    def end(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def drain(self, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) for the batches in hand; False if some are still out."""
        if self.in_flight == 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            log.warning("rebalance-with-batches-in-hand", batches=self.in_flight)
            return False
        return True

    async def stop(self, timeout_s: float) -> bool:
        """The worker stops: no new call, no acknowledgement, the batches in hand finish
        (at most `timeout_s`; a call still out then is in doubt after the restart)."""
        self.stopping = True
        return await self.drain(timeout_s)

    async def give_up(self, reason: BaseException) -> None:
        """Stop the worker: it cannot go on without committing past lost records."""
        log.error("worker-stops", reason=type(reason).__name__, error=str(reason)[:300])
        await self.app.crash(reason)
