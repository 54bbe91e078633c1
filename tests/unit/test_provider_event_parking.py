"""Early provider events are parked, never waited for in place (the livelock of a
stage that waits on another): the stream goes on, a parked event is judged again when
its message's state is folded, its verdict waits for the projection to catch up, and
too many parked pause fetching of provider events only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from agents.provider_events import EventJudge, provider_events
from agents.status import status as status_agent
from pipeline.domain.parking import Parked, ParkingLot
from pipeline.kafka.progress import FoldWatch
from pipeline.runtime import Runtime
from tests.unit.faustkit import FakeStream
from tests.unit.test_agents import (  # noqa: F401  (world: the fixture)
    dropped,
    event,
    provider_event,
    run,
    sent_state,
    statuses,
    world,
)

KEY = "acme:m-1"


def processing_state() -> dict[str, Any]:
    return {**sent_state(), "status": "PROCESSING", "attempts": [],
            "history": [{"status": "PROCESSING", "channel": "email"}]}  # fmt: skip


@dataclass
class FakeConsumer:
    """ConsumerControl's surface: a status end offset, and what was paused."""

    end: int | None = None
    paused: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    committed_offset: int | None = None

    def end_offset(self, topic: str, partition: int) -> int | None:
        return self.end

    def committed(self, topic: str, partition: int) -> int | None:
        return self.committed_offset

    def pause(self, topic: str) -> None:
        self.paused.append(topic)

    def resume(self, topic: str) -> None:
        self.resumed.append(topic)


async def test_a_parked_event_does_not_hold_up_the_next(
    world: Runtime,  # noqa: F811
) -> None:
    rt = replace(world, settings=world.settings.with_(provider_event_wait_s=0.3))
    rt.tables.state[KEY] = processing_state()
    rt.tables.state["acme:m-2"] = {**sent_state("sendgrid", "SG2"), "messageId": "m-2"}
    batch = [provider_event(rt, 1), provider_event(rt, 2, messageId="m-2",
                                                   providerMessageId="SG2")]  # fmt: skip
    stream = await run(provider_events, rt, [batch])
    # m-2 went through at once; m-1 (its send never folded) waited, then was dropped.
    assert [v["messageId"] for v in rt.sinks.status.values()] == ["m-2"]
    assert stream.acked == [2, 1]
    assert dropped(rt, "send-not-recorded") == 1


async def test_the_status_stage_wakes_the_parked_event_of_its_message(
    world: Runtime,  # noqa: F811
) -> None:
    rt = replace(world, settings=world.settings.with_(provider_event_wait_s=30.0))
    rt.tables.state[KEY] = processing_state()
    stream = FakeStream([[provider_event(rt, 1)]])
    judge = asyncio.create_task(provider_events(stream, rt, rt.stage("provider-events")))
    await asyncio.sleep(0.1)
    assert statuses(rt) == [] and stream.acked == []  # parked, unacknowledged
    assert rt.metrics.provider_events_parked._value.get() == 1
    sent = {**sent_state()["history"][0], "messageId": "m-1", "tenant": "acme",
            "userId": "u-1", "attempt": 1, "inDoubt": False}  # fmt: skip
    folded = event("herald.notifications.status", 9, KEY,
                   rt.codec.encode("NotificationStatus", sent))  # fmt: skip
    await run(status_agent, rt, [[folded]])  # the SENT reaches the state
    await asyncio.wait_for(judge, 2.0)  # well before its 30 s wait
    assert statuses(rt)[-1] == "DELIVERED" and stream.acked == [1]
    assert rt.metrics.provider_events_parked._value.get() == 0


async def folding(rt: Runtime, offsets: range, every_s: float) -> None:
    """The status stage folding partition 0 record by record (the projection moving)."""
    for offset in offsets:
        await asyncio.sleep(every_s)
        rt.fold_watch.folded({0: offset}, [])


async def test_past_its_wait_an_event_waits_while_the_projection_moves_toward_its_target(
    world: Runtime,  # noqa: F811
) -> None:
    consumer = FakeConsumer(end=20)  # status records 0..19 were written by its deadline
    rt = replace(world, consumer=consumer,
                 settings=world.settings.with_(provider_event_wait_s=0.1))  # fmt: skip
    rt.tables.state[KEY] = processing_state()
    rt.fold_watch.folded({0: 3}, [])  # the projection is at offset 3 of partition 0
    stream = FakeStream([[provider_event(rt, 1)]])
    judge = asyncio.create_task(provider_events(stream, rt, rt.stage("provider-events")))
    await folding(rt, range(4, 15), 0.05)  # 0.55 s, five times its wait, moving all along
    assert stream.acked == [] and dropped(rt, "send-not-recorded") == 0
    rt.tables.state[KEY] = sent_state()  # the projection reaches its send ...
    rt.fold_watch.folded({0: 19}, [])  # ... and offset 19, without naming the message
    await asyncio.wait_for(judge, 2.0)
    assert statuses(rt) == ["DELIVERED"] and stream.acked == [1]


async def test_an_event_is_judged_when_the_projection_stops_short_of_its_target(
    world: Runtime,  # noqa: F811
) -> None:
    # Records the projection never folds (another worker's, a transaction marker): it
    # stands still below the target, and after one more wait the event is judged.
    rt = replace(world, consumer=FakeConsumer(end=20),
                 settings=world.settings.with_(provider_event_wait_s=0.1))  # fmt: skip
    rt.fold_watch.folded({0: 3}, [])
    stream = OpenStream([[provider_event(rt, 1, messageId="m-never")]])
    judge = asyncio.create_task(provider_events(stream, rt, rt.stage("provider-events")))
    await until_acked(stream)
    assert stream.acked == [1] and dropped(rt, "unknown-message") == 1
    await close(stream, judge)


async def test_a_full_lot_pauses_provider_events_until_half_drained(
    world: Runtime,  # noqa: F811
) -> None:
    consumer = FakeConsumer()
    rt = replace(world, consumer=consumer,
                 settings=world.settings.with_(provider_event_wait_s=60.0))  # fmt: skip
    for n in (1, 2):
        rt.tables.state[f"acme:m-{n}"] = {**processing_state(), "messageId": f"m-{n}"}
    stream = FakeStream([])
    judge = EventJudge(rt, rt.stage("provider-events"), stream)
    judge.lot = ParkingLot(max_size=2)
    batch = [provider_event(rt, n, messageId=f"m-{n}", eventId=f"e{n}") for n in (1, 2)]
    held = await judge.first_look(batch)
    assert held == batch and consumer.paused == ["herald.provider.events"]
    rt.tables.state["acme:m-1"] = {**sent_state(), "messageId": "m-1"}
    judge.states_changed(["acme:m-1"])
    await judge.settle_ready()
    assert statuses(rt) == ["DELIVERED"] and stream.acked == [1]
    assert consumer.resumed == ["herald.provider.events"]  # 1 of 2 left: half


async def test_events_fetched_before_a_rebalance_are_let_go_unacknowledged(
    world: Runtime,  # noqa: F811
) -> None:
    rt = replace(world, settings=world.settings.with_(provider_event_wait_s=60.0))
    rt.tables.state[KEY] = processing_state()
    stream = FakeStream([])
    judge = EventJudge(rt, rt.stage("provider-events"), stream)
    await judge.first_look([provider_event(rt, 1)])
    rt.ownership.app.consumer_generation_id = 2  # a rebalance: the partition is re-read
    rt.tables.state[KEY] = sent_state()
    judge.states_changed([KEY])
    await judge.settle_ready()
    assert statuses(rt) == [] and stream.acked == [] and len(judge.lot) == 0


def parked(key: str, due: float, since: float = 0.0) -> Parked:
    return Parked(key, object(), {}, 0, since, due)


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_the_lot_releases_by_message_and_by_deadline(order: tuple[str, str]) -> None:
    lot = ParkingLot(max_size=4)
    first, second, late = parked(order[0], 1.0), parked(order[1], 2.0), parked("c", 9.0)
    for p in (first, second, late):
        lot.park(p)
    assert len(lot) == 3 and lot.next_due() == 1.0
    assert lot.changed(["zzz"]) is False and lot.changed([order[1]]) is True
    assert lot.release(now=1.5) == ([second], [first])
    assert len(lot) == 1 and lot.next_due() == 9.0
    lot.changed(["c"])
    assert lot.release(now=0.0) == ([late], [])
    late.due = 20.0
    lot.park(late)  # parked again with a later deadline: the old one no longer fires
    assert lot.release(now=10.0) == ([], []) and lot.next_due() == 20.0
    assert lot.forget(lambda event: False) == 1 and len(lot) == 0 and lot.next_due() is None


def test_the_lot_is_full_at_its_size_and_drained_at_half() -> None:
    lot = ParkingLot(max_size=4)
    for n in range(4):
        lot.park(parked(f"k{n}", float(n)))
    assert lot.full and not lot.drained
    lot.release(now=1.0)
    assert not lot.full and lot.drained


def test_the_projection_is_caught_up_by_its_folds_or_by_what_was_committed_before() -> None:
    watch = FoldWatch()
    assert watch.caught_up(0, end=10, committed=10)  # nothing new since the last start
    assert not watch.caught_up(0, end=10, committed=4)  # a backlog from before the start
    watch.folded({0: 8}, [])
    assert not watch.caught_up(0, end=10, committed=4)  # this worker's own folds count
    # Another worker folded (and committed) the rest while it held the partition.
    assert watch.caught_up(0, end=10, committed=10)
    watch.folded({0: 9, 1: 2}, [])
    assert watch.caught_up(0, end=10) and watch.caught_up(1, end=None)


@dataclass
class OpenStream(FakeStream):
    """A stream that stays open after its batches, until `end` is set."""

    end: asyncio.Event = field(default_factory=asyncio.Event)

    async def noack_take(self, max_: int, within: float) -> Any:
        for batch in self.batches:
            await asyncio.sleep(0.05)  # records arrive later than the stage starts
            yield batch
        await self.end.wait()


async def until_acked(stream: FakeStream, seconds: float = 1.0) -> None:
    """Give the stage up to `seconds` to acknowledge something."""
    for _ in range(int(seconds / 0.02)):
        await asyncio.sleep(0.02)
        if stream.acked:
            return


async def close(stream: OpenStream, judge: asyncio.Task[None]) -> None:
    """End the stream; the stage must then finish."""
    stream.end.set()
    await asyncio.wait_for(judge, 2.0)


async def test_a_parked_event_is_judged_at_its_deadline_while_the_stream_is_open(
    world: Runtime,  # noqa: F811
) -> None:
    rt = replace(world, settings=world.settings.with_(provider_event_wait_s=0.1))
    stream = OpenStream([[provider_event(rt, 1, messageId="m-never")]])
    judge = asyncio.create_task(provider_events(stream, rt, rt.stage("provider-events")))
    await until_acked(stream)
    assert stream.acked == [1] and dropped(rt, "unknown-message") == 1
    await close(stream, judge)


def test_an_event_waiting_for_the_projection_is_due_once_it_gets_there() -> None:
    lot = ParkingLot()
    waiting = parked("k", due=1.0)
    lot.park_until_folded(waiting, target=10, deadline=600.0)  # records 0..9 to be folded
    assert lot.folded({0: 8, 1: 50}) is False and lot.release(now=5.0) == ([], [])
    assert lot.folded({0: 9}) is True
    assert lot.release(now=5.0) == ([], [waiting]) and len(lot) == 0


class CountingDict(dict[str, Any]):
    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return super().get(key, default)


async def test_while_the_projection_is_behind_a_due_event_reads_no_state(
    world: Runtime,  # noqa: F811
) -> None:
    consumer = FakeConsumer(end=10)
    state = CountingDict({KEY: processing_state()})
    rt = replace(world, consumer=consumer, tables=replace(world.tables, state=state),
                 settings=world.settings.with_(provider_event_wait_s=0.05))  # fmt: skip
    rt.fold_watch.folded({0: 3}, [])
    stream = OpenStream([[provider_event(rt, 1)]])
    judge = asyncio.create_task(provider_events(stream, rt, rt.stage("provider-events")))
    await folding(rt, range(4, 9), 0.05)  # moving, ten fold batches past its wait
    assert state.reads == 1 and stream.acked == []  # the first look only
    rt.fold_watch.folded({0: 9}, [])  # the projection gets there: judged for good
    await until_acked(stream)
    assert stream.acked == [1] and dropped(rt, "send-not-recorded") == 1
    await close(stream, judge)
