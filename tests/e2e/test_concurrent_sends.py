"""Sends in flight concurrently (issue 9): with a slow provider, one recipient's messages
reach it in their order while other recipients' messages overtake them, and a
provider's rate limit holds however many calls are in flight."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from confluent_kafka import Producer

from pipeline.kafka.catalog import REQUESTS
from pipeline.kafka.io import producer_config
from tests.harness import DATA, Stack, codec, phone, unique, wait_for

LATENCY_MS = 100
JITTER_S = 0.1


@pytest.fixture(autouse=True)
def no_faults(stack: Stack) -> Iterator[None]:
    stack.clear_faults()
    yield
    stack.clear_faults()


def request(user: str, ref: str, **recipient: Any) -> dict[str, Any]:
    return {
        "messageId": unique("m"),
        "tenant": "acme",
        "recipient": {"userId": user, **recipient},
        "template": "booking-confirmation",
        "data": {**DATA, "bookingRef": ref},
    }


def produce(stack: Stack, requests: list[dict[str, Any]]) -> None:
    """Straight to the requests topic, in this order (faster than the HTTP door)."""
    producer = Producer(producer_config(stack.env["KAFKA_BOOTSTRAP_SERVERS"]))
    for record in requests:
        key = f"acme:{record['recipient']['userId']}"
        producer.produce(REQUESTS, key=key, value=codec().encode("NotificationRequest", record))
    assert producer.flush(10) == 0


def arrived(stack: Stack, numbers: list[str], each: int = 1) -> dict[str, list[dict[str, Any]]]:
    """The simulator's messages per number, once every number has `each` of them."""

    def all_there() -> dict[str, list[dict[str, Any]]] | None:
        got = {n: stack.sim_messages(to=n) for n in numbers}
        return got if all(len(ms) >= each for ms in got.values()) else None

    return wait_for(all_there, timeout=60, every=0.5)


def test_one_recipient_in_order_while_others_overtake(stack: Stack) -> None:
    stack.fault("twilio", latencyMs=LATENCY_MS, times=100000)
    slow_user, slow_number = unique("ordered"), phone()
    refs = [f"ORD{i:03d}" for i in range(8)]
    others = [(unique("other"), phone()) for _ in range(40)]
    # One recipient's 8 first (each call waits for the previous one: 100 ms each), then
    # 40 to recipients of their own.
    produce(stack, [request(slow_user, ref, phone=slow_number) for ref in refs]
            + [request(user, "OTHER", phone=number) for user, number in others])  # fmt: skip

    got = arrived(stack, [slow_number, *(n for _u, n in others)])
    wait_for(lambda: len(stack.sim_messages(to=slow_number)) >= len(refs) or None, timeout=60)
    mine = sorted(stack.sim_messages(to=slow_number), key=lambda m: m["seq"])
    order = [next(r for r in refs if r in str(m["content"])) for m in mine]
    assert order == refs  # the recipient's messages in the order they were accepted

    last = mine[-1]["seq"]
    overtook = [n for _u, n in others if got[n][0]["seq"] < last]
    assert all(len(got[n]) == 1 for _u, n in others)
    # Sent one at a time, the 40 later messages would all come after the 8th: with
    # calls in flight side by side, most of them overtake it.
    assert len(overtook) >= len(others) // 2, (len(overtook), len(others))


def test_a_providers_rate_limit_holds_with_calls_in_flight(stack: Stack) -> None:
    """FCM is limited to 12/s in the suite (2/s in each of 6 partitions)."""
    stack.fault("fcm", latencyMs=LATENCY_MS, times=100000)
    rate, count = 12, 60
    tokens = [f"tok-{unique('rl')}" for _ in range(count)]
    produce(stack, [request(unique("rl"), "RATE", pushTokens=[t]) | {"channels": ["push"]}
                    for t in tokens])  # fmt: skip
    got = arrived(stack, tokens)
    times = sorted(
        datetime.fromisoformat(m["at"].replace("Z", "+00:00")).timestamp()
        for ms in got.values() for m in ms
    )  # fmt: skip
    assert len(times) == count
    # In every one-second window the simulator never saw more than the limit, allowing
    # 0.1 s of jitter between a call leaving the worker and its arrival being recorded
    # (a call delayed on its way makes the window from it to a punctual one shorter).
    most = max(sum(1 for u in times[i:] if u < t + 1.0 - JITTER_S) for i, t in enumerate(times))
    per_second = sorted(Counter(int(t) for t in times).values())
    print(f"\nfcm at {rate}/s: most in any 1 s window {most}; per second {per_second}")
    assert most <= rate, (most, per_second)
    assert times[-1] - times[0] >= (count - rate) / rate  # it took as long as the limit says
