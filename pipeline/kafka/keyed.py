"""Key-ordered concurrency: many calls in flight, one at a time per key, in arrival order.

The send stage keeps up to N provider calls in flight per lane, yet the messages of
one recipient (the record key, `tenant:userId`) must reach the provider in the order
they arrived. As in Confluent's Parallel Consumer (key-ordered mode), every key has a
queue of its own; a key's next item starts only once its previous one finished, and
different keys run side by side, at most `limit` at once::

    submit(k1, a1) submit(k2, b1) submit(k1, a2)        limit = 2
      a1 ──────────┐                                    a1 and b1 run at once;
      b1 ───┐      └─► a2 ───                           a2 waits for a1 (same key),
            └─► (a slot frees)                          not for b1 (b1 overtakes a2)

Items whose key is free start in arrival order as slots free up (a key that just
finished goes to the back of the line, so one busy key cannot starve the others).
An item that raises stores its exception in its future and the others go on, its
key's next item included (what a failure means is the caller's business: a send
failure becomes a retry through the scheduler, never a stalled partition).

Memory is what the caller submits: the send stage submits one batch at a time, so a
slow provider fills its lane's window and that lane takes nothing new until the
batch is through (back-pressure on that lane only). No Kafka here: unit-tested alone.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

__all__ = ["KeyedConcurrency"]

T = TypeVar("T")


@dataclass
class _Item(Generic[T]):
    key: Hashable
    make: Callable[[], Awaitable[T]]
    future: asyncio.Future[T]
    context: contextvars.Context


class KeyedConcurrency(Generic[T]):
    """Runs submitted coroutines: at most `limit` at once, one at a time per key, in
    the order they were submitted per key. `submit` returns the item's future."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self._waiting: dict[Hashable, deque[_Item[T]]] = {}  # per key, not started yet
        self._busy: set[Hashable] = set()  # keys with an item running
        self._ready: deque[Hashable] = deque()  # free keys with items waiting, in line
        self._running: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.peak = 0  # the most items ever in flight at once (a measure, for tests)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def submit(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """Queue `make()` under `key`; it starts once its key and a slot are free, in the
        submitter's context (e.g. its batch's effects), whoever's finishing starts it."""
        loop = asyncio.get_running_loop()
        item = _Item(key, make, loop.create_future(), contextvars.copy_context())
        queue = self._waiting.setdefault(key, deque())
        queue.append(item)
        if len(queue) == 1 and key not in self._busy:
            self._ready.append(key)
        self._idle.clear()
        self._pump()
        return item.future

    async def join(self) -> None:
        """Wait until every submitted item has finished (or been cancelled)."""
        await self._idle.wait()

    def cancel(self) -> None:
        """Cancel the items in flight and drop the queued ones (their futures cancelled)."""
        for queue in self._waiting.values():
            for item in queue:
                item.future.cancel()
        self._waiting.clear()
        self._ready.clear()
        for task in self._running:
            task.cancel()
        if not self._running:
            self._idle.set()

    def _pump(self) -> None:
        while self._ready and len(self._running) < self.limit:
            key = self._ready.popleft()
            queue = self._waiting[key]
            item = queue.popleft()
            if not queue:
                del self._waiting[key]
            if item.future.cancelled():  # cancelled by its caller before it started
                if key in self._waiting:
                    self._ready.append(key)
                continue
            self._busy.add(key)
            task = asyncio.create_task(self._run(item), context=item.context)
            item.future.add_done_callback(partial(_cancel_with, task))
            self._running.add(task)
            self.peak = max(self.peak, len(self._running))
        if not self._running and not self._waiting:
            self._idle.set()

    async def _run(self, item: _Item[T]) -> None:
        try:
            result = await item.make()
        except asyncio.CancelledError:
            item.future.cancel()
            raise
        except Exception as exc:
            if not item.future.done():
                item.future.set_exception(exc)
        else:
            if not item.future.done():
                item.future.set_result(result)
        finally:
            self._finished(item.key, asyncio.current_task())

    def _finished(self, key: Hashable, task: Any) -> None:
        self._running.discard(task)
        self._busy.discard(key)
        if key in self._waiting:
            self._ready.append(key)  # its next item, behind the keys already in line
        self._pump()


def _cancel_with(task: asyncio.Task[None], future: asyncio.Future[Any]) -> None:
    """An item's future cancelled by its caller cancels the item's running task."""
    if future.cancelled():
        task.cancel()
