"""Fault tests (issue 11, item 4): a stream of requests through the email (SendGrid
micro-batches) and SMS (one Twilio call each) lanes, urgent and bulk, disrupted in its
middle, then counted per recipient at the simulator: every message arrived exactly once,
or the pipeline named it in doubt (`pipeline.devstack.drill`, the kill drill's round with
another disruption, `pipeline.devstack.disruptions`).

These tests stop the broker, so they run on a stack of their own: a broker on free
ports, the simulator and two workers in one group, started once for the module, with a
provider timeout of 2 s so that a hang is seen in seconds. The counts are printed."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.devstack.counting import SimulatorCount
from pipeline.devstack.disruptions import Disruption, provider_hang, restart_broker, stop_worker
from pipeline.devstack.drill import Drill, RoundResult, build_messages, produce
from pipeline.kafka import admin, broker
from pipeline.kafka.catalog import Catalog
from pipeline.settings import Settings
from tests.harness import Stack, codec, stack_env, wait_for
from tests.stack import local_broker

pytestmark = pytest.mark.slow

MESSAGES = int(os.environ.get("HERALD_FAULT_MESSAGES", "400"))
WORKERS = ("worker", "worker-2")
TIMEOUT_S = 2  # HERALD_PROVIDER_TIMEOUT of this stack
LATENCY = {"latencyMs": 30}  # SendGrid and Twilio: calls in flight at the disruption


@dataclass
class Own:
    """This module's stack and its broker."""

    stack: Stack
    settings: Settings
    bootstrap: str


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Iterator[Own]:
    home = tmp_path_factory.mktemp("faults")
    settings = local_broker(home, repo)
    stack: Stack | None = None
    try:
        bootstrap = settings.local_bootstrap
        admin.apply(Catalog.load(settings.topics_file), bootstrap)
        stack = Stack(stack_env(home, bootstrap, {"HERALD_PROVIDER_TIMEOUT": str(TIMEOUT_S)}), home)
        stack.start("simulator")
        for name in WORKERS:
            stack.start(name, timeout=180)
        yield Own(stack, settings, bootstrap)
    finally:
        if stack is not None:
            stack.stop_all()
        broker.stop(settings)


@pytest.fixture
def ready(own: Own) -> Own:
    """The module's stack as each test expects it: broker and both workers up, calls
    taking 30 ms at SendGrid and Twilio, no other fault."""
    broker.start(own.settings)  # a no-op when it runs
    for name in WORKERS:
        if own.stack.pid(name) is None:
            own.stack.start(name, timeout=180)
    own.stack.clear_faults()
    for provider in ("sendgrid", "twilio"):
        own.stack.fault(provider, **LATENCY)
    return own


def run_round(
    own: Own, disrupt: Disruption, capsys: pytest.CaptureFixture[str], grace_s: float = 3.0
) -> RoundResult:
    """One drill round with `disrupt` in its middle; its counts go to the test output."""
    seed = random.randrange(1 << 30)
    drill = Drill(own.stack, WORKERS, own.bootstrap, codec(), messages=MESSAGES, quiet_s=30.0,
                  grace_s=grace_s, rng=random.Random(seed), log=lambda _line: None)  # fmt: skip
    result = drill.round(1, disrupt)
    summary = {k: v for k, v in result.as_dict().items() if not k.endswith("_ids")}
    with capsys.disabled():  # the counts belong in the test output, pass or fail
        print(f"\nseed {seed}: {summary}")
    return result


def assert_exactly_once(r: RoundResult) -> None:
    """0 lost, no dead end, and every duplicate named in doubt by the pipeline."""
    assert r.lost == [], f"lost {len(r.lost)} ({r.lost_at}): {r.lost[:10]}"
    assert r.unexplained == [], f"sent twice, not named in doubt: {r.unexplained[:10]}"
    assert r.marketing_twice == [], f"marketing sent twice: {r.marketing_twice[:10]}"
    assert r.dead_ends == {}, r.dead_ends
    assert 0 < r.killed_after < r.messages, "the disruption came after the stream"


def test_broker_stopped_and_restarted_mid_stream_loses_nothing(
    ready: Own, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_round(ready, restart_broker(ready.settings), capsys)
    assert_exactly_once(result)
    assert all(ready.stack.pid(name) for name in WORKERS), "a worker stopped with the broker"


def test_sigterm_of_a_worker_under_load_hands_back_its_work(
    ready: Own, capsys: pytest.CaptureFixture[str]
) -> None:
    for provider in ("sendgrid", "twilio"):  # slower calls: more of them in flight
        ready.stack.fault(provider, latencyMs=1000)
    result = run_round(ready, stop_worker, capsys)
    assert "exit -9" not in result.victim, f"no graceful stop: {result.victim}"
    assert_exactly_once(result)
    # The stopping worker lets its calls in flight finish before Faust stops (at most half
    # HERALD_REBALANCE_TIMEOUT), so sends are left in doubt only by a rare call still out
    # then: 0, 1 and 0 in three runs at 1 s latency (before: 1 to 25 a round). Printed above.
    assert len(result.in_doubt) <= 5, f"{len(result.in_doubt)} in doubt: {result.in_doubt[:10]}"


def test_sendgrid_hanging_past_its_timeout_then_recovering_loses_nothing_unnamed(
    ready: Own, capsys: pytest.CaptureFixture[str]
) -> None:
    """SendGrid never answers for 8 s (the adapter gives up after 2 s): the calls that
    timed out are retried through SMTP, later emails go to SMTP while SendGrid's circuit
    is open, and SendGrid takes emails again once it answers."""
    hang = provider_hang("sendgrid", {"fail": "timeout"}, 8.0, after=LATENCY)
    result = run_round(ready, hang, capsys)
    assert_exactly_once(result)
    assert result.duplicated == {}
    # A call sent and unanswered is in doubt (the provider may have it): standard emails are
    # resent through SMTP, marketing ones reported SENT in doubt and not sent again, so
    # those the hanging SendGrid never took are missing, named (their count is printed).
    assert result.retried > 0, "no call timed out: the hang came too late"
    assert result.providers.get("smtp", 0) > 0, result.providers
    assert_sendgrid_takes_emails_again(ready)


def assert_sendgrid_takes_emails_again(own: Own) -> None:
    """After the hang, a few emails go out through SendGrid again (its circuit closed)."""
    emails = [m for m in build_messages(codec(), os.urandom(4).hex(), 8) if m.channel == "email"]
    sim = SimulatorCount(own.stack.sim, {m.to for m in emails})
    sim.refresh(count=False)
    produce(own.bootstrap, emails)

    def arrived() -> bool:
        return sum(sim.refresh().values()) >= len(emails)

    wait_for(arrived, 60)
    assert sim.providers.get("sendgrid", 0) > 0, dict(sim.providers)


def test_sendgrid_answering_after_its_timeout_sends_no_email_twice_unnamed(
    ready: Own, capsys: pytest.CaptureFixture[str]
) -> None:
    """SendGrid takes every email but answers after 3 s for 8 s (the adapter gives up
    after 2 s): an email whose call timed out was accepted all the same. The call went
    out and no answer came, so it is in doubt: a standard email is resent (through SMTP)
    and named in doubt, a marketing one is reported SENT in doubt and not sent again."""
    hang = provider_hang("sendgrid", {"latencyMs": 3000}, 8.0, after=LATENCY)
    result = run_round(ready, hang, capsys, grace_s=5.0)
    assert result.retried > 0, "no call timed out: the hang came too late"
    assert_exactly_once(result)
