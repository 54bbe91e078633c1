"""The loop every stage runs: take what has arrived, handle it, wait for its effects, ack.

::

    stream.noack_take(batch_max, batch_window)
      └─► keep the events this worker still owns (Ownership)
            └─► handle(events)            every produce and table write is collected
                  └─► settle              ... and acknowledged by the broker
                        └─► ack, in order  only now may Faust commit their offsets

The send lanes run with a window (`Stage(window=N)`): the next batch is taken while
earlier ones are still handled, each in a task of its own, at most N records in hand,
and the batches are acknowledged in the order they were taken.

A record whose effects the broker refused (or did not acknowledge within
`HERALD_ACK_TIMEOUT`) goes to the dead letter topic with its original bytes; if
even that fails, the worker stops rather than commit past it. A stage that raises
on a batch dead-letters the batch: one bad record never stops a partition.

Ownership: Faust hands a stream every record it fetched, also records fetched
before a rebalance that are handled after it. Once the rebalance is done (the
consumer generation moved on), the partition has been sought back to its
committed offset, so this worker or the partition's new owner reads such a
record again: handling it here too would send it twice, acknowledging it could
commit an offset on the wrong side of the seek. A stale event is therefore
neither handled nor acknowledged. While a rebalance is in progress nothing new
starts and nothing is acknowledged; the rebalance waits for the batch in hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from pipeline.kafka.effects import Effects, Failure

__all__ = ["Handler", "Ownership", "Stage", "describe"]

log = structlog.get_logger("herald")

# A batch handler; it may return events it holds back (parked: not acknowledged now,
# the stage acknowledges them later through another `process`).
Handler = Callable[[list[Any]], Awaitable[Collection[Any] | None]]


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


class Stage:
    """One stage's batch loop, with what it needs to dead-letter and acknowledge.

    `dead_letter(event, reason, error)` produces the event's dead letter (its
    future joins the batch's effects like every other produce).

    With a `window` (the send lanes: records in flight), the next batch is taken
    while earlier ones are still handled, each in a task of its own, as long as the
    records in hand stay within the window (memory bounded; a full window is the
    lane's back-pressure). Acknowledgements keep the batches' order: a batch is
    acknowledged once all of its records finished and every earlier batch was
    acknowledged, so no offset is ever committed past unfinished work. Without a
    window (0), one batch at a time.
    """

    def __init__(
        self,
        name: str,
        ownership: Ownership,
        dead_letter: Callable[[Any, str, str], Awaitable[None]],
        *,
        batch_max: int,
        window_s: float,
        ack_timeout_s: float,
        window: int = 0,
    ) -> None:
        self.name = name
        self.ownership = ownership
        self.dead_letter = dead_letter
        self.batch_max = batch_max
        self.window_s = window_s
        self.ack_timeout_s = ack_timeout_s
        self.window = window
        self.open = 0  # records in batches being handled (with a window)

    async def run(self, stream: Any, handle: Handler) -> None:
        """Handle `stream` batch by batch until the agent stops."""
        if self.window > 0:
            await self._run_overlapping(stream, handle)
            return
        async for batch in stream.noack_take(self.batch_max, within=self.window_s):
            events = await self.ownership.keep(batch)
            if events:
                await self.process(stream, events, handle)

    async def process(self, stream: Any, events: list[Any], handle: Handler) -> None:
        """Handle one batch, wait for its effects, then acknowledge what is still ours."""
        # No await between the caller's keep() and here: a rebalance waits for this.
        self.ownership.begin()
        ok, held = await self._handle(events, handle, _Working(self.ownership))
        if ok:
            for event in await self.ownership.keep(events):
                if id(event) not in held:
                    await stream.ack(event)

    async def _handle(
        self, events: list[Any], handle: Handler, working: _Working
    ) -> tuple[bool, set[int]]:
        """Handle and settle one batch inside `working`: False if the worker stops, and
        the ids of the events the handler held back."""
        effects = Effects()
        held: set[int] = set()
        try:
            with effects.collecting():
                try:
                    held = {id(e) for e in await handle(events) or ()}
                except Exception as exc:  # a bug or a broken batch: dead-letter, never lose
                    log.exception("stage-failed", stage=self.name, events=len(events))
                    for event in events:
                        await self.dead_letter(event, "internal-error", describe(exc))
                failures = await effects.settle(self.ack_timeout_s)
                if failures and not await self._recover(effects, failures):
                    return False, held  # the worker stops; nothing of it is acknowledged
        finally:
            working.end()
        return True, held

    async def _run_overlapping(self, stream: Any, handle: Handler) -> None:
        """Batches handled side by side within the window, acknowledged in their order."""
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        room = asyncio.Event()
        previous: asyncio.Future[bool] | None = None
        try:
            async for batch in stream.noack_take(self.batch_max, within=self.window_s):
                while self.open and self.open + len(batch) > self.window:
                    room.clear()  # the window is full: this lane waits (back-pressure)
                    await room.wait()
                events = await self.ownership.keep(batch)
                if not events:
                    continue
                self.ownership.begin()  # no await since keep(): a rebalance waits for it
                working, turn = _Working(self.ownership), loop.create_future()
                self.open += len(events)
                task = loop.create_task(
                    self._process_in_turn(stream, events, handle, working, previous, turn)
                )
                previous = turn
                tasks.add(task)
                task.add_done_callback(
                    partial(self._finished, tasks, room, len(events), working, turn)
                )
            if tasks:  # the stream ended (tests): let the batches in hand finish
                await asyncio.wait(set(tasks))
        finally:
            for task in list(tasks):  # the agent stops: nothing of these is acknowledged
                task.cancel()

    def _finished(
        self, tasks: set[asyncio.Task[None]], room: asyncio.Event, n: int, working: _Working,
        turn: asyncio.Future[bool], task: asyncio.Task[None],
    ) -> None:  # fmt: skip
        tasks.discard(task)
        working.end()  # a task cancelled before it ran never ended its working()
        if not turn.done():
            turn.set_result(False)
        self.open -= n
        room.set()

    async def _process_in_turn(
        self, stream: Any, events: list[Any], handle: Handler, working: _Working,
        previous: asyncio.Future[bool] | None, turn: asyncio.Future[bool],
    ) -> None:  # fmt: skip
        ok, held = await self._handle(events, handle, working)
        if previous is not None:
            ok = await previous and ok  # the earlier batches first
        if ok:
            for event in await self.ownership.keep(events):
                if id(event) not in held:
                    await stream.ack(event)
        turn.set_result(ok)

    async def _recover(self, effects: Effects, failures: list[Failure]) -> bool:
        """Dead-letter the records whose effects were refused; stop the worker if that fails."""
        orphans = [f for f in failures if f.event is None]
        if not orphans:
            failed: dict[int, tuple[Any, BaseException]] = {}
            for f in failures:
                failed.setdefault(id(f.event), (f.event, f.error))
            for event, error in failed.values():
                await self.dead_letter(event, "produce-failed", describe(error))
            again = await effects.settle(self.ack_timeout_s)
            if not again:
                return True
            orphans = again
        await self.ownership.give_up(orphans[0].error)
        return False


class _Working:
    """One batch's hold on `Ownership.working()`, released exactly once."""

    def __init__(self, ownership: Ownership) -> None:
        self.ownership = ownership
        self.held = True

    def end(self) -> None:
        if self.held:
            self.held = False
            self.ownership.end()


def describe(exc: BaseException) -> str:
    """`Type: message`, for the error field of a dead letter."""
    return f"{type(exc).__name__}: {exc}"[:2000]
