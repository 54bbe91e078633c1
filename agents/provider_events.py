"""Stage `provider-events`: delivery and engagement events from provider webhooks
become status changes (SENT → DELIVERED / BOUNCED / FAILED; OPENED, CLICKED), but
only for the message's own send.

An event names its message by a join key the provider echoes, so its signature
alone does not make it true for that message: `pipeline.domain.provider_events.judge`
holds it against the message's state (same provider, same provider message id).
Events for unknown messages, for another provider's or another send's message, and
repeated event ids are counted in `herald_provider_events_dropped{provider, reason}`
and change nothing.

An event that overtook its send (the SENT not folded into the state yet) is parked,
unacknowledged (`pipeline.domain.parking`), and the stage goes on with the next: it
never waits in place, since that would stop Faust's fetch loop for every topic, the
status topic it waits for included. A parked event is judged again when the status
stage folds its message, and finally once HERALD_PROVIDER_EVENT_WAIT has passed and
the projection has folded every status record written by then (at most
HERALD_PROVIDER_EVENT_MAX_WAIT in all). With PARKING_MAX events parked, fetching
provider events pauses until half have gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import structlog

from pipeline.domain.ids import message_key
from pipeline.domain.parking import Parked, ParkingLot
from pipeline.domain.provider_events import Verdict, judge
from pipeline.domain.state import status_for_event
from pipeline.kafka.batches import Stage
from pipeline.runtime import Runtime, in_event

log = structlog.get_logger("herald")

__all__ = ["STAGE", "EventJudge", "provider_events"]

STAGE = "provider-events"


async def provider_events(stream: Any, rt: Runtime, stage: Stage) -> None:
    """Turn each ProviderEvent that matches its message's send into a NotificationStatus."""
    judge_ = EventJudge(rt, stage, stream)
    rt.fold_watch.listen(judge_.states_changed)
    parked = asyncio.get_running_loop().create_task(judge_.look_again())
    try:
        await stage.run(stream, judge_.first_look)
        await judge_.drain()  # the stream ended (tests): the parked settle first
    finally:
        parked.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await parked


class EventJudge:
    """The stage's two doors: a batch from the stream (`first_look`), and the parked
    events whose state changed or whose time is up (`look_again`)."""

    def __init__(self, rt: Runtime, stage: Stage, stream: Any) -> None:
        self.rt, self.stage, self.stream = rt, stage, stream
        self.lot = ParkingLot()
        self.wake = asyncio.Event()
        self.topic = ""  # provider events' topic, learnt from the first event
        self.generation: Any = None  # the consumer generation the lot was last checked in
        # States changed while a batch is judged: an event judged WAIT before its send
        # was folded, and parked after, would otherwise miss that news until its deadline.
        self.changed_meanwhile: set[str] | None = None

    def states_changed(self, keys: Any) -> None:
        """The status stage folded a batch: events of these messages, and those waiting
        for the projection to get where it now is, are ready."""
        keys = list(keys)
        if self.changed_meanwhile is not None:
            self.changed_meanwhile.update(keys)
        changed = self.lot.changed(keys)
        if self.lot.folded(self.rt.fold_watch.positions) or changed:
            self.wake.set()

    async def first_look(self, events: list[Any]) -> list[Any]:
        """Judge a batch from the stream; the events held back are those parked."""
        held = []
        self.changed_meanwhile = set()
        try:
            judged = await self.rt.each(events, STAGE, self._first)
        finally:
            meanwhile, self.changed_meanwhile = self.changed_meanwhile, None
        for event, parked in judged:
            held.append(event)
            self.lot.park(parked)
        self.lot.changed(meanwhile)  # judged before a fold that came before the parking
        if held:
            self.wake.set()  # the deadlines changed: `look_again` waits anew
        self.rt.metrics.provider_events_parked.set(len(self.lot))
        if self.lot.full and self.rt.consumer is not None and self.topic:
            self.rt.consumer.pause(self.topic)
        return held

    async def _first(self, event: Any) -> Parked | None:
        record = await self.rt.decode(event.message, "ProviderEvent", STAGE)
        if record is None:
            return None
        self.topic = event.message.topic
        # Keyed tenant:messageId like the status topic, so the state is local.
        key = message_key(record["tenant"] or "", record["messageId"] or "")
        if self.rt.recent_events.seen(_event_id(record), time.monotonic()):
            self._drop(record, Verdict.DUPLICATE)
            return None
        state = self.rt.tables.state.get(key)
        verdict = judge(record, state)
        if verdict is Verdict.WAIT:
            now = time.monotonic()
            wait_s = self.rt.settings.provider_event_wait_s
            return Parked(key, event, record, event.message.partition, now, now + wait_s)
        await self._finish(record, verdict, state)
        return None

    async def look_again(self) -> None:
        """Forever: wait for a fold or a deadline, then judge what is ready."""
        while True:
            due = self.lot.next_due()
            timeout = None if due is None else max(0.0, due - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
            self.wake.clear()
            try:
                await self.settle_ready()
            except Exception:  # a bug: log it, never stop judging what is parked
                log.exception("provider-events-parked-failed", parked=len(self.lot))
                await asyncio.sleep(1.0)

    async def settle_ready(self) -> None:
        """Judge the parked events that are ready or due, acknowledging those decided."""
        ownership = self.rt.ownership
        generation = ownership.app.consumer_generation_id
        if generation != self.generation:  # a rebalance: what was fetched before is read again
            self.generation = generation
            self.lot.forget(ownership.current)
            self.rt.metrics.provider_events_parked.set(len(self.lot))
        ready, due = self.lot.release(time.monotonic())
        if not ready and not due:
            return
        by_event = {id(p.event): (p, False) for p in ready}
        by_event.update({id(p.event): (p, True) for p in due})
        events = await ownership.keep([p.event for p in (*ready, *due)])  # after a rebalance

        async def again(batch: list[Any]) -> list[Any]:
            held = []
            for event in batch:
                parked, is_due = by_event[id(event)]
                if not await self._again(parked, is_due):
                    held.append(event)
            return held

        await self.stage.process(self.stream, events, again)
        self.rt.metrics.provider_events_parked.set(len(self.lot))
        if self.lot.drained and self.rt.consumer is not None and self.topic:
            self.rt.consumer.resume(self.topic)

    async def _again(self, parked: Parked, is_due: bool) -> bool:
        """Judge a parked event again; False when it goes back to the lot.

        Past its wait (`is_due`) it is judged for good only once the projection has
        folded every status written by then; until that, it waits for the fold without
        being looked at (no state read per event while the projection is behind)."""
        now = time.monotonic()
        if is_due and not self._settled(parked, now):
            # Looked at again when the fold gets there, or after another wait at the
            # latest: then, if the projection did not move at all meanwhile, nothing more
            # is coming that it waits for, and it is judged.
            s = self.rt.settings
            deadline = min(
                parked.since + s.provider_event_max_wait_s, now + s.provider_event_wait_s
            )
            self.lot.park_until_folded(parked, parked.target or 0, deadline)
            return False
        state = self.rt.tables.state.get(parked.key)
        verdict = judge(parked.record, state, settled=is_due)
        if verdict is Verdict.WAIT:  # its message changed, its send is still not there
            self.lot.park(parked)
            return False
        if self.rt.recent_events.seen(_event_id(parked.record), now):
            verdict = Verdict.DUPLICATE  # the same event, parked twice, was applied
        self.rt.metrics.provider_event_wait.labels(parked.record["provider"]).observe(
            now - parked.since
        )
        with in_event(parked.event):
            await self._finish(parked.record, verdict, state)
        return True

    def _settled(self, parked: Parked, now: float) -> bool:
        """Its wait is over and the projection has folded every status record written
        by the time it was, or has not moved since it last looked (or it waited
        HERALD_PROVIDER_EVENT_MAX_WAIT in all)."""
        consumer = self.rt.consumer
        if consumer is None or now - parked.since >= self.rt.settings.provider_event_max_wait_s:
            return True
        topic, partition = self.rt.sinks.status.get_topic_name(), parked.partition
        if parked.target is None:
            parked.target = consumer.end_offset(topic, partition)
        committed = consumer.committed(topic, partition)
        if self.rt.fold_watch.caught_up(partition, parked.target, committed):
            return True
        position = self.rt.fold_watch.positions.get(partition, -1)
        idle = parked.position is not None and position == parked.position
        parked.position = position
        return idle

    async def _finish(
        self, record: Mapping[str, Any], verdict: Verdict, state: Mapping[str, Any] | None
    ) -> None:
        if verdict is not Verdict.APPLY:
            self._drop(record, verdict)
            return
        status = status_for_event(record, state)
        if status is not None:
            await self.rt.emit_status(status, STAGE)
        self.rt.recent_events.add(_event_id(record), time.monotonic())

    def _drop(self, record: Mapping[str, Any], verdict: Verdict) -> None:
        self.rt.metrics.provider_events_dropped.labels(record["provider"], verdict.value).inc()

    async def drain(self) -> None:
        """Settle everything parked (the stream ended: tests)."""
        while len(self.lot):
            await self.settle_ready()
            due = self.lot.next_due()
            if due is not None and len(self.lot):
                await asyncio.sleep(max(0.0, min(due - time.monotonic(), 0.05)))


def _event_id(record: Mapping[str, Any]) -> str:
    return f"{record['provider']}:{record['eventId']}"
