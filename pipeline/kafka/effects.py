"""Effects: what handling a batch of records caused, awaited before its offsets commit.

Every record a stage produces (a status, a dispatch, a dead letter, a scheduler
entry) and every table write (a changelog record) becomes a future that the
broker resolves. While a batch is handled, `Effects.collecting()` gathers them,
each with the event that caused it; `settle()` waits for all of them. The batch
loop (`pipeline.kafka.batches`) acknowledges its events to Faust only after `settle()`,
so an offset is committed only once everything its record caused is on the
broker, whatever Faust's own flush does at commit time (it gives up waiting on
its buffer after 0.1 s, and drops delivery errors).

The collector is found through a context variable, as Faust finds the current
event: a table write (`table[key] = value`) has no other way to hand its
changelog future to the stage that made it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.streams import current_event

from pipeline.exceptions import NotAcknowledged

__all__ = ["Effects", "Failure", "TrackedTable", "branch", "current", "flush", "track"]

_COLLECTING: ContextVar[Effects | None] = ContextVar("herald_effects", default=None)


@dataclass(frozen=True)
class Failure:
    """A record the broker did not acknowledge, and the event that caused it (if known)."""

    event: Any
    error: BaseException


@dataclass
class Effects:
    """The futures of one batch's records, each with the event being handled when it was made."""

    pending: list[tuple[Awaitable[Any], Any]] = field(default_factory=list)

    def add(self, future: Awaitable[Any], event: Any = None) -> None:
        self.pending.append((future, event if event is not None else current_event()))

    @contextmanager
    def collecting(self) -> Iterator[Effects]:
        token = _COLLECTING.set(self)
        try:
            yield self
        finally:
            _COLLECTING.reset(token)

    async def settle(self, timeout_s: float) -> list[Failure]:
        """Wait for every pending record; the ones that failed or did not arrive in time."""
        pending, self.pending = self.pending, []
        if not pending:
            return []
        futures = [asyncio.ensure_future(f) for f, _ in pending]
        _done, late = await asyncio.wait(futures, timeout=timeout_s)
        failures = []
        for (_f, event), fut in zip(pending, futures, strict=True):
            if fut in late:
                failures.append(Failure(event, TimeoutError(f"not acknowledged in {timeout_s}s")))
            elif fut.exception() is not None:
                failures.append(Failure(event, fut.exception()))  # type: ignore[arg-type]
        return failures


@contextmanager
def branch() -> Iterator[Effects]:
    """The effects of one of a batch's concurrent tasks (a provider call in flight).

    Inside, `flush()` waits for this task's own records only: with one shared
    collector, a task's flush could take another task's pending intent and return
    before its own was acknowledged. On exit, what is left joins the batch's effects.
    Enter it inside the task (a task has its own copy of the context).
    """
    parent = _COLLECTING.get()
    mine = Effects()
    token = _COLLECTING.set(mine)
    try:
        yield mine
    finally:
        _COLLECTING.reset(token)
        if parent is not None:
            parent.pending.extend(mine.pending)


def current() -> Effects | None:
    """The effects being collected for the batch in hand, if any."""
    return _COLLECTING.get()


async def flush(timeout_s: float) -> None:
    """Wait now for everything collected so far (e.g. an intent before a provider call)."""
    effects = _COLLECTING.get()
    if effects is None:
        return
    failures = await effects.settle(timeout_s)
    if failures:
        raise NotAcknowledged(f"{len(failures)} record(s): {failures[0].error!r}")


def track(future: Awaitable[Any]) -> None:
    """Hand a produce or changelog future to the batch being handled, if there is one."""
    effects = _COLLECTING.get()
    if effects is not None:
        effects.add(future)


class TrackedTable(faust.Table):
    """A Faust table whose changelog writes are part of the current batch's effects."""

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        fut = super().send_changelog(*args, **kwargs)
        track(fut)
        return fut
