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

Ownership (`pipeline.kafka.ownership`): a record fetched before a rebalance and handled
after it is neither handled nor acknowledged here; the rebalance waits for the batch in
hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from functools import partial
from typing import Any

import structlog

from pipeline.kafka.effects import Effects, Failure
from pipeline.kafka.ownership import Ownership

__all__ = ["Handler", "Stage", "describe"]

log = structlog.get_logger("herald")

# A batch handler; it may return events it holds back (parked: not acknowledged now,
# the stage acknowledges them later through another `process`).
Handler = Callable[[list[Any]], Awaitable[Collection[Any] | None]]


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
