"""Key-ordered concurrency (`pipeline.kafka.keyed`): order per key, overtaking across
keys, the limit, failures that stop nothing else, cancellation. No Kafka."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.kafka.keyed import KeyedConcurrency


def _recorder(log: list[str], name: str, delay: float, fail: bool = False):  # type: ignore[no-untyped-def]
    async def run() -> str:
        log.append(f"start {name}")
        await asyncio.sleep(delay)
        log.append(f"end {name}")
        if fail:
            raise RuntimeError(name)
        return name

    return run


async def test_one_key_runs_in_arrival_order_one_at_a_time() -> None:
    log: list[str] = []
    runner: KeyedConcurrency[str] = KeyedConcurrency(10)
    futures = [runner.submit("k", _recorder(log, f"m{i}", 0.01 * (5 - i))) for i in range(5)]
    await runner.join()
    assert [f.result() for f in futures] == [f"m{i}" for i in range(5)]
    expected = [entry for i in range(5) for entry in (f"start m{i}", f"end m{i}")]
    assert log == expected  # the slower first item is never overtaken by its own key
    assert runner.peak == 1


async def test_other_keys_overtake_a_slow_key() -> None:
    log: list[str] = []
    runner: KeyedConcurrency[str] = KeyedConcurrency(10)
    runner.submit("slow", _recorder(log, "a1", 0.2))
    runner.submit("slow", _recorder(log, "a2", 0.0))
    runner.submit("fast", _recorder(log, "b1", 0.0))
    runner.submit("fast", _recorder(log, "b2", 0.0))
    await runner.join()
    assert log.index("end b2") < log.index("end a1")  # b overtakes a
    assert log.index("end a1") < log.index("start a2")  # a stays in order


async def test_at_most_limit_in_flight() -> None:
    in_flight, peak = 0, 0

    async def call() -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1

    runner: KeyedConcurrency[None] = KeyedConcurrency(7)
    for i in range(50):
        runner.submit(f"k{i}", call)
    assert runner.in_flight == 7 and runner.queued == 43
    await runner.join()
    assert peak == 7 == runner.peak
    assert runner.in_flight == 0 and runner.queued == 0


async def test_many_keys_finish_in_about_one_call_time() -> None:
    runner: KeyedConcurrency[None] = KeyedConcurrency(300)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(300):
        runner.submit(i, lambda: asyncio.sleep(0.1))
    await runner.join()
    assert loop.time() - started < 1.0  # 300 calls of 100 ms, not 30 s


async def test_a_failure_stops_nothing_else() -> None:
    log: list[str] = []
    runner: KeyedConcurrency[str] = KeyedConcurrency(2)
    bad = runner.submit("k", _recorder(log, "bad", 0.0, fail=True))
    after = runner.submit("k", _recorder(log, "after", 0.0))
    other = runner.submit("j", _recorder(log, "other", 0.0))
    await runner.join()
    with pytest.raises(RuntimeError, match="bad"):
        bad.result()
    assert after.result() == "after" and other.result() == "other"
    assert log.index("end bad") < log.index("start after")


async def test_cancel_stops_running_and_queued_items() -> None:
    log: list[str] = []
    runner: KeyedConcurrency[str] = KeyedConcurrency(1)
    running = runner.submit("a", _recorder(log, "a", 10))
    queued = runner.submit("b", _recorder(log, "b", 0))
    await asyncio.sleep(0.01)
    runner.cancel()
    await asyncio.wait_for(runner.join(), 1)
    assert running.cancelled() and queued.cancelled()
    assert log == ["start a"]


async def test_an_item_cancelled_before_it_starts_is_skipped() -> None:
    log: list[str] = []
    runner: KeyedConcurrency[str] = KeyedConcurrency(1)
    runner.submit("k", _recorder(log, "first", 0.01))
    skipped = runner.submit("k", _recorder(log, "skipped", 0))
    last = runner.submit("k", _recorder(log, "last", 0))
    skipped.cancel()
    await runner.join()
    assert last.result() == "last" and "start skipped" not in log


async def test_the_caller_cancelled_while_joining_leaves_items_to_cancel() -> None:
    runner: KeyedConcurrency[None] = KeyedConcurrency(4)
    futures = [runner.submit(i, lambda: asyncio.sleep(10)) for i in range(8)]
    joining = asyncio.create_task(runner.join())
    await asyncio.sleep(0.01)
    joining.cancel()
    runner.cancel()
    await asyncio.wait_for(runner.join(), 1)
    assert all(f.cancelled() for f in futures)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        KeyedConcurrency(0)
