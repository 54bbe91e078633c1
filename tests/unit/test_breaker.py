"""The circuit breaker of the seed (6.9): open after five failures, one probe a minute."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from pipeline.domain.breaker import CircuitBreaker, CircuitState
from pipeline.exceptions import TransientError
from pipeline.kafka.keyed import KeyedConcurrency
from pipeline.metrics import Metrics
from pipeline.providers.base import Accepted, Message, SingleSendProvider
from pipeline.providers.delivery import deliver


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_five_consecutive_failures_and_probes() -> None:
    clock, changes = Clock(), []
    breaker = CircuitBreaker("sendgrid", clock=clock, on_change=lambda p, s: changes.append(s))
    for _ in range(4):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.record_success()  # a success resets the count
    for _ in range(5):
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN and not breaker.allow()
    clock.now = 59.9
    assert not breaker.allow()
    clock.now = 60.0
    assert breaker.allow()  # the one trial call of the half-open circuit
    assert breaker.state is CircuitState.HALF_OPEN and not breaker.allow()
    breaker.record_failure()  # the trial failed: open again for another interval
    assert breaker.state is CircuitState.OPEN and not breaker.allow()
    clock.now = 120.0
    breaker.tick()
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED and breaker.allow()
    assert changes == [
        CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.OPEN,
        CircuitState.HALF_OPEN, CircuitState.CLOSED,
    ]  # fmt: skip


# ------------------------------------------------------ with many calls in flight at once


class SlowProvider(SingleSendProvider):
    channel = "sms"

    def __init__(self, name: str, fail: bool) -> None:
        self.name = name  # type: ignore[misc]
        self.fail = fail
        self.calls = 0

    async def send(self, message: Message) -> Accepted:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise TransientError("503", code="503")
        return Accepted(self.name, f"{self.name}-{self.calls}")


def _dispatch(i: int) -> dict[str, Any]:
    return {"messageId": f"m-{i}", "tenant": "acme", "channel": "sms", "to": f"+3460000{i:04d}",
            "text": "hi", "subject": None, "html": None}  # fmt: skip


async def test_a_half_open_circuit_lets_one_trial_through_among_calls_in_flight() -> None:
    clock = Clock()
    breakers = {
        "twilio": CircuitBreaker("twilio", clock=clock, threshold=5, probe_after_s=60),
        "vonage": CircuitBreaker("vonage", clock=clock),
    }
    primary, secondary = SlowProvider("twilio", fail=True), SlowProvider("vonage", fail=False)
    for _ in range(5):
        breakers["twilio"].record_failure()
    clock.now = 60.0  # time for a trial
    outcomes = await asyncio.gather(*(
        deliver(_dispatch(i), [primary, secondary], breakers, Metrics()) for i in range(20)
    ))  # fmt: skip
    assert primary.calls == 1  # the trial, alone, however many calls were in flight
    assert secondary.calls == 19
    assert [o.provider for o in outcomes].count("vonage") == 19
    assert breakers["twilio"].state is CircuitState.OPEN  # the trial failed


async def test_calls_after_the_circuit_opened_fail_over_while_others_are_in_flight() -> None:
    breakers = {"twilio": CircuitBreaker("twilio"), "vonage": CircuitBreaker("vonage")}
    primary, secondary = SlowProvider("twilio", fail=True), SlowProvider("vonage", fail=False)
    runner: KeyedConcurrency[Any] = KeyedConcurrency(5)  # five in flight at a time
    futures = [
        runner.submit(i, partial(deliver, _dispatch(i), [primary, secondary], breakers, Metrics()))
        for i in range(30)
    ]
    await runner.join()
    # The first five were in flight when the provider failed: they opened the circuit;
    # every later call went to the secondary provider without trying the primary.
    assert primary.calls == 5 and breakers["twilio"].state is CircuitState.OPEN
    assert [f.result().provider for f in futures[5:]] == ["vonage"] * 25
