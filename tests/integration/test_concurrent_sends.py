"""Sends in flight concurrently (issue 9), on the real broker with the worker restarted
under the settings each test needs: 300 SMS at 100 ms provider latency one call at a
time (HERALD_SEND_CONCURRENCY=1, how the send stage worked before) and concurrently,
with the rate limits raised (the measured figures are printed); and a kill -9 of the
worker with calls in flight: nothing lost, only calls named in doubt sent twice, and
each recipient's messages still in their order."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from pipeline.kafka.catalog import STATUS
from tests.e2e.test_concurrent_sends import produce, request
from tests.harness import Stack, codec, phone, read_topic, unique, wait_for

pytestmark = pytest.mark.slow

RAISED = "twilio=100000,vonage=100000,sendgrid=100000,smtp=100000,fcm=100000"


@pytest.fixture
def worker_with(stack: Stack) -> Iterator[Callable[[dict[str, str]], None]]:
    """Restart the session's worker with some settings changed; put it back after."""
    saved = dict(stack.env)

    def restart(changes: dict[str, str]) -> None:
        stack.stop("worker")
        stack.env.clear()
        stack.env.update(saved | changes)
        stack.start("worker", timeout=180)

    stack.clear_faults()
    try:
        yield restart
    finally:
        stack.clear_faults()
        stack.stop("worker")
        stack.env.clear()
        stack.env.update(saved)
        stack.start("worker", timeout=180)
        wait_for(lambda: httpx.get(f"{stack.api}/readyz", timeout=2).status_code == 200, 120)


def send_sms(stack: Stack, count: int) -> tuple[float, float, dict[str, list[str]]]:
    """Produce `count` SMS, one to each number; the seconds from producing until the last
    reached the simulator, and from the first arrival to the last (by the simulator's
    clock), and the refs each number got."""
    after = max((m["seq"] for m in stack.sim_messages()), default=0)
    numbers = [phone() for _ in range(count)]
    refs = {n: f"R{n[-7:]}" for n in numbers}
    started = time.time()
    produce(stack, [request(unique("conc"), refs[n], phone=n) for n in numbers])

    mine: list[dict[str, Any]] = []
    cursor = after

    def everything() -> list[dict[str, Any]] | None:
        nonlocal cursor
        got = client.get(f"{stack.sim}/_sim/messages", params={"after": cursor}).json()
        cursor = max((m["seq"] for m in got), default=cursor)
        mine.extend(m for m in got if m["to"] in refs)
        return mine if len({m["to"] for m in mine}) >= count else None

    with httpx.Client(timeout=5) as client:
        wait_for(everything, timeout=240, every=0.2)
    at = sorted(datetime.fromisoformat(m["at"].replace("Z", "+00:00")).timestamp() for m in mine)
    arrived: dict[str, list[str]] = {n: [] for n in numbers}
    for m in mine:
        arrived[m["to"]].append(refs[m["to"]])
    return at[-1] - started, at[-1] - at[0], arrived


def test_300_sms_at_100ms_one_at_a_time_and_concurrently(
    stack: Stack, worker_with: Callable[[dict[str, str]], None],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    figures: dict[tuple[str, int], tuple[float, float]] = {}
    # The 0 ms figures are the benchmark's (`herald bench --mix sms=100`); here the two
    # that show what concurrency changes, at a provider latency of 100 ms.
    for label, concurrency, latency in (("one at a time", "1", 100),
                                        ("concurrent", "256", 100)):  # fmt: skip
        worker_with({"HERALD_SEND_CONCURRENCY": concurrency, "HERALD_RATE_LIMITS": RAISED})
        if latency:
            stack.fault("twilio", latencyMs=latency, times=100000)
        took, spread, arrived = send_sms(stack, 300)
        stack.clear_faults()
        assert all(len(refs) == 1 for refs in arrived.values())  # each exactly once
        figures[(label, latency)] = took, spread
    with capsys.disabled():
        print("\n300 SMS, rate limits raised, one worker:")
        for (label, latency), (took, spread) in figures.items():
            print(f"  {label:14} at {latency:3} ms: {took:5.1f} s from producing "
                  f"({300 / took:4.0f}/s); first to last arrival {spread:5.2f} s")  # fmt: skip
    # Printed, not asserted: speed is measured in bench/, never asserted as a timing.


def test_kill_with_calls_in_flight_loses_nothing_and_keeps_each_recipients_order(
    stack: Stack, kafka: str, worker_with: Callable[[dict[str, str]], None],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    worker_with({"HERALD_RATE_LIMITS": RAISED})
    stack.fault("twilio", latencyMs=100, times=100000)
    seen = len(stack.sim_messages())
    numbers = [phone() for _ in range(30)]
    users = {n: unique("kill") for n in numbers}
    refs = {n: [f"K{n[-7:]}-{i:02d}" for i in range(10)] for n in numbers}
    records = [request(users[n], refs[n][i], phone=n) for i in range(10) for n in numbers]
    ids = {r["messageId"] for r in records}
    produce(stack, records)  # 300: 10 to each of 30 recipients, one at a time each
    wait_for(lambda: len(stack.sim_messages()) - seen >= 60 or None, timeout=60, every=0.05)
    stack.stop("worker", kill=True)  # calls in flight: 30 keys, each with one out
    stack.start("worker", timeout=180)

    def everything() -> dict[str, list[str]] | None:
        got: dict[str, list[str]] = {n: [] for n in numbers}
        for m in sorted(stack.sim_messages(), key=lambda m: m["seq"]):
            if m["to"] in got:
                got[m["to"]].append(next(r for r in refs[m["to"]] if r in str(m["content"])))
        return got if all(set(got[n]) == set(refs[n]) for n in numbers) else None

    arrived = wait_for(everything, timeout=240, every=0.5)
    time.sleep(2)  # anything sent twice has arrived too
    arrived = everything() or arrived
    statuses = [codec().decode("NotificationStatus", m.value()) for m in read_topic(kafka, STATUS)]
    in_doubt = {s["messageId"] for s in statuses if s["messageId"] in ids and s["inDoubt"]}
    ref_of = {r["messageId"]: r["data"]["bookingRef"] for r in records}
    doubtful_refs = {ref_of[i] for i in in_doubt}
    counts = Counter(ref for got in arrived.values() for ref in got)
    twice = {ref for ref, n in counts.items() if n > 1}
    with capsys.disabled():
        print(f"\nkill -9 with calls in flight: 300 sent, {len(counts)} arrived, "
              f"{len(in_doubt)} named in doubt, {len(twice)} sent twice")  # fmt: skip
    assert len(counts) == 300  # nothing lost
    assert twice <= doubtful_refs  # only calls in flight, which the pipeline names
    assert len(in_doubt) <= 30  # at most one in flight per recipient
    for n in numbers:  # first arrivals in each recipient's order
        firsts = list(dict.fromkeys(arrived[n]))
        assert firsts == refs[n], (n, arrived[n])
