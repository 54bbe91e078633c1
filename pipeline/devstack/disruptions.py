"""What a drill round does to the running stack in the middle of its stream.

A `Drill` round (`pipeline.devstack.drill`) produces its requests, waits until a
random share has reached the provider simulator, then applies one disruption and
counts what arrived. The kill drill kills a worker; the fault tests stop a worker
gracefully, stop and restart the broker, or make a provider hang past the
adapters' timeout. Each disruption is a function of the drill (its stack, workers
and random generator) that does its harm, undoes it, and says what it did, so the
counting stays in one place.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx

from pipeline.devstack.processes import LocalStack
from pipeline.kafka import broker
from pipeline.settings import Settings

__all__ = [
    "Disruption",
    "Target",
    "kill_worker",
    "provider_hang",
    "restart_broker",
    "stop_worker",
]


class Target(Protocol):
    """What a disruption acts on: the drill's stack, its workers, its random choices."""

    stack: LocalStack
    workers: Sequence[str]
    rng: random.Random


Disruption = Callable[[Target], str]


def kill_worker(target: Target) -> str:
    """kill -9 one of the workers, at random, and start it again (the kill drill)."""
    victim = target.rng.choice(list(target.workers))
    target.stack.stop(victim, kill=True)
    target.stack.start(victim, timeout=180.0)
    return f"kill -9 {victim}"


def stop_worker(target: Target) -> str:
    """SIGTERM one of the workers, at random, wait for it to exit, start it again.

    The description carries the exit code: -9 means it did not stop within the
    stack's wait and was killed, which is no graceful stop.
    """
    victim = target.rng.choice(list(target.workers))
    started = time.monotonic()
    code = target.stack.stop(victim)
    took = time.monotonic() - started
    target.stack.start(victim, timeout=180.0)
    return f"SIGTERM {victim} (exit {code} after {took:.1f}s)"


def restart_broker(settings: Settings, down_s: float = 2.0) -> Disruption:
    """Stop the local broker with SIGTERM, leave it down `down_s` more, start it again
    on the same data directory and ports (`pipeline.kafka.broker`)."""

    def disrupt(_target: Target) -> str:
        started = time.monotonic()
        broker.stop(settings)
        stopped = time.monotonic() - started
        time.sleep(down_s)
        broker.start(settings)
        return (
            f"broker SIGTERM (stopped in {stopped:.1f}s), "
            f"back after {time.monotonic() - started:.1f}s"
        )

    return disrupt


def provider_hang(
    provider: str, hang: Mapping[str, Any], seconds: float, after: Mapping[str, Any]
) -> Disruption:
    """Give `provider` the simulator fault script `hang` for `seconds`, then `after`
    (`{}`: none), e.g. `{"fail": "timeout"}` (never answers) or a `latencyMs` beyond the
    adapters' `HERALD_PROVIDER_TIMEOUT` (answers, too late)."""

    def put(sim: str, script: Mapping[str, Any]) -> None:
        resp = httpx.put(f"{sim}/_sim/faults/{provider}", json=dict(script), timeout=5)
        resp.raise_for_status()

    def disrupt(target: Target) -> str:
        put(target.stack.sim, hang)
        time.sleep(seconds)
        put(target.stack.sim, after)
        return f"{provider} {dict(hang)} for {seconds:.0f}s"

    return disrupt
