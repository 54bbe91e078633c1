"""Nothing lost when a worker is killed: two workers, a stream through the batching (email)
and the non-batching (SMS) lanes, kill -9 of one of them at random moments, restart; the
simulator's count says 0 lost, and every duplicate is a send the pipeline named in doubt.

`herald bench kill` runs the same drill for many rounds (see bench/README.md)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import httpx
import pytest

from pipeline.devstack.drill import Drill
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.settings import Settings
from tests.harness import Stack, wait_for

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("HERALD_DRILL_ROUNDS", "1"))
MESSAGES = int(os.environ.get("HERALD_DRILL_MESSAGES", "2000"))


@pytest.fixture
def two_workers(stack: Stack) -> Iterator[list[str]]:
    """The session's worker plus a second one in the same group; the second stops after."""
    stack.clear_faults()
    stack.start("worker-2", timeout=180)
    # Calls take a while, so that some are in flight when the worker dies.
    for provider in ("sendgrid", "twilio"):
        stack.fault(provider, latencyMs=30)
    try:
        yield ["worker", "worker-2"]
    finally:
        stack.clear_faults()
        stack.stop("worker-2")
        if stack.pid("worker") is None:
            stack.start("worker")
        ready = f"{stack.api_of('worker')}/readyz"
        wait_for(lambda: httpx.get(ready, timeout=2).status_code == 200, 120)


def test_killed_workers_lose_nothing_and_repeat_only_sends_in_doubt(
    stack: Stack, kafka: str, two_workers: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    codec = AvroCodec(SchemaSet.from_dir(Settings().schemas_dir))
    seed = random.randrange(1 << 30)
    lines: list[str] = []
    drill = Drill(stack, two_workers, kafka, codec, messages=MESSAGES, quiet_s=30.0,
                  rng=random.Random(seed), log=lines.append)  # fmt: skip
    results = [drill.round(n) for n in range(1, ROUNDS + 1)]
    summary = [{k: v for k, v in r.as_dict().items() if not k.endswith("_ids")} for r in results]
    with capsys.disabled():  # the counts belong in the test output, pass or fail
        print(f"\nkill drill, seed {seed}:", *summary, sep="\n  ")
    for r in results:
        assert r.lost == [], f"round {r.round} (seed {seed}) lost {len(r.lost)}: {r.lost[:10]}"
        assert r.unexplained == [], (
            f"round {r.round} (seed {seed}): sent twice without being named in doubt: "
            f"{r.unexplained[:10]}"
        )
        assert r.dead_ends == {}, f"round {r.round}: {r.dead_ends}"
        assert r.marketing_twice == [], f"round {r.round}: marketing sent twice"
    # The drill really killed something with messages still to send.
    assert all(0 < r.killed_after < r.messages for r in results), summary
