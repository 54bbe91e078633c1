"""The kill drill: kill a worker while it sends, restart it, count what arrived.

One round produces a stream of notifications through the batching lanes (email:
SendGrid micro-batches) and the non-batching lanes (SMS: one Twilio call each), in
both priority lanes, each to a recipient of its own; once a random fraction has
reached the provider simulator, it kills one of the workers with SIGKILL and
starts it again; then it waits until every message has arrived, or nothing has
moved for a while, and counts per recipient at the simulator:

- lost: never arrived, and the pipeline did not say so (the promise is none, ever);
- in doubt, not resent, missing: the pipeline named the send in doubt and, by its
  priority's policy (marketing: never twice), did not repeat it, and the provider
  never had it (the crash came between the intent and the request);
- duplicated: arrived more than once; each must be a send the pipeline itself
  named in doubt (`inDoubt` on its status records), the only sends a crash may
  repeat.

`herald bench kill` runs many rounds in a row; the integration suite runs a few. The
fault tests run the same round with another disruption in place of the kill
(`pipeline.devstack.disruptions`: a graceful stop, the broker restarted, a provider
hanging), counted the same way.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from pipeline.devstack.counting import SimulatorCount, StatusWatch
from pipeline.devstack.disruptions import Disruption, kill_worker
from pipeline.devstack.processes import LocalStack
from pipeline.domain.ids import user_key
from pipeline.kafka.catalog import REQUESTS
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.io import producer_config

__all__ = [
    "DATA",
    "MIX",
    "TENANT",
    "Drill",
    "DrillMessage",
    "RoundResult",
    "build_messages",
    "produce",
]

TENANT = "drill"
# (channel, priority): email goes through SendGrid micro-batches, SMS one call at a
# time; standard takes the urgent lane, marketing the bulk lane.
MIX = (("email", "standard"), ("sms", "standard"), ("email", "marketing"), ("sms", "marketing"))
DATA = {
    "name": "Ana", "bookingRef": "K1LL", "flight": "IB3456", "date": "2026-12-01",
    "origin": "MAD", "destination": "JFK",
}  # fmt: skip


@dataclass(frozen=True)
class DrillMessage:
    message_id: str
    to: str
    channel: str
    priority: str
    key: bytes
    value: bytes


def build_messages(codec: AvroCodec, tag: str, n: int) -> list[DrillMessage]:
    """`n` requests, cycling through MIX, each to a recipient of its own."""
    out = []
    for i in range(n):
        channel, priority = MIX[i % len(MIX)]
        user, message_id = f"{tag}-{i:05d}", f"{tag}-m{i:05d}"
        phone = f"+346{int(tag, 16) % 10**7:07d}{i:05d}"  # 15 digits, unique per round
        to = f"{user}@drill.example" if channel == "email" else phone
        record = {
            "messageId": message_id,
            "tenant": TENANT,
            "recipient": {
                "userId": user,
                "email": to if channel == "email" else None,
                "phone": to if channel == "sms" else None,
                **dict.fromkeys(("whatsapp", "pushTokens", "locale", "timezone")),
            },
            "template": "booking-confirmation",
            "data": DATA,
            "priority": priority,
            "channels": [channel],
            **dict.fromkeys(("mode", "sendAt", "webhookUrl")),
            "metadata": {"drill": tag},
        }
        value = codec.encode("NotificationRequest", record, check=True)
        key = user_key(TENANT, user).encode()
        out.append(DrillMessage(message_id, to, channel, priority, key, value))
    return out


def produce(bootstrap: str, messages: Sequence[DrillMessage]) -> None:
    producer = Producer(producer_config(bootstrap))
    for m in messages:
        while True:
            try:
                producer.produce(REQUESTS, key=m.key, value=m.value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(30):
        raise RuntimeError("the drill's requests were not all acknowledged")


@dataclass
class RoundResult:
    round: int
    victim: str  # what the disruption did (`kill -9 worker-2`, ...)
    killed_after: int  # messages at the simulator when the disruption began
    messages: int
    lost: list[str] = field(default_factory=list)  # message ids
    duplicated: dict[str, int] = field(default_factory=dict)  # message id -> times sent
    in_doubt: list[str] = field(default_factory=list)
    # In doubt and, by the priority's policy, not sent again; and did not arrive: the
    # crash came before the provider had it. Named by the pipeline, never silent.
    not_resent_missing: list[str] = field(default_factory=list)
    dead_ends: dict[str, str] = field(default_factory=dict)
    lost_at: dict[str, int] = field(default_factory=dict)  # last status of the lost -> count
    retried: int = 0  # messages with a RETRY status
    providers: dict[str, int] = field(default_factory=dict)  # arrivals per provider
    seconds: float = 0.0
    marketing_twice: list[str] = field(default_factory=list)  # the policy says: never

    @property
    def unexplained(self) -> list[str]:
        """Duplicates the pipeline did not name in doubt: a broken promise."""
        return sorted(set(self.duplicated) - set(self.in_doubt))

    def as_dict(self) -> dict[str, Any]:
        return {
            "round": self.round, "victim": self.victim, "killed_after": self.killed_after,
            "messages": self.messages, "lost": len(self.lost),
            "duplicated": len(self.duplicated), "in_doubt": len(self.in_doubt),
            "in_doubt_not_resent_missing": len(self.not_resent_missing),
            "unexplained_duplicates": len(self.unexplained), "dead_ends": len(self.dead_ends),
            "marketing_twice": len(self.marketing_twice),
            "retried": self.retried, "providers": self.providers,
            "seconds": round(self.seconds, 1), "lost_ids": self.lost[:50],
            "lost_last_status": self.lost_at,
            "unexplained_ids": self.unexplained[:50],
        }  # fmt: skip


@dataclass
class Drill:
    """Rounds of kill-and-restart (or another disruption) against a running stack."""

    stack: LocalStack
    workers: Sequence[str]
    bootstrap: str
    codec: AvroCodec
    messages: int = 1000
    quiet_s: float = 20.0  # no progress for this long (after the restart): stop waiting
    grace_s: float = 3.0  # after everything arrived, for late duplicates
    rng: random.Random = field(default_factory=random.Random)
    log: Callable[[str], None] = print

    def round(self, number: int, disrupt: Disruption = kill_worker) -> RoundResult:
        started = time.monotonic()
        tag = uuid.uuid4().hex[:8]
        batch = build_messages(self.codec, tag, self.messages)
        by_to = {m.to: m.message_id for m in batch}
        ids = set(by_to.values())
        sim = SimulatorCount(self.stack.sim, set(by_to))
        sim.refresh(count=False)  # past every earlier message: only this round's count
        watch = StatusWatch(self.bootstrap, self.codec)
        try:
            produce(self.bootstrap, batch)
            kill_at = int(self.rng.uniform(0.05, 0.8) * len(batch))
            killed_after = self._wait_for(sim, kill_at, 300.0)
            self.log(f"round {number}: disrupting after {killed_after}/{len(batch)}")
            victim = disrupt(self)
            self.log(f"round {number}: {victim}")
            counts = self._settle(sim, by_to, watch, ids)
        finally:
            watch.poll(ids)
            watch.close()
        result = RoundResult(number, victim, killed_after, len(batch))
        missing = sorted(by_to[to] for to in by_to if counts[to] == 0)
        result.duplicated = {by_to[to]: n for to, n in counts.items() if n > 1}
        marketing = {m.message_id for m in batch if m.priority == "marketing"}
        result.marketing_twice = sorted(set(result.duplicated) & marketing)
        result.in_doubt = sorted(watch.in_doubt)
        result.dead_ends = {m: e for m, e in watch.dead_ends.items() if m in missing}
        result.not_resent_missing = [m for m in missing if m in watch.not_resent]
        named = set(result.dead_ends) | watch.not_resent
        result.lost = [m for m in missing if m not in named]
        result.lost_at = dict(Counter(watch.last.get(m, "none") for m in result.lost))
        result.retried = len(watch.retried)
        result.providers = dict(sim.providers)
        if result.lost:  # ask every worker for its threads and tasks, into its log
            for name in self.workers:
                proc = self.stack.procs.get(name)
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGUSR1)
        result.seconds = time.monotonic() - started
        return result

    def _wait_for(self, sim: SimulatorCount, count: int, timeout: float) -> int:
        """Wait until `count` messages of the round have arrived; how many have."""
        deadline = time.monotonic() + timeout
        while (arrived := sum(sim.refresh().values())) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the drill's messages stopped arriving ({arrived})")
            time.sleep(0.05)
        return arrived

    def _settle(
        self, sim: SimulatorCount, by_to: dict[str, str], watch: StatusWatch, ids: set[str]
    ) -> Counter[str]:
        """Wait until every message arrived or was accounted for by the pipeline (plus a
        grace period for late duplicates), or until nothing new happened for `quiet_s`."""
        last, last_change, complete_at = -1, time.monotonic(), None
        while True:
            watch.poll(ids)
            counts = sim.refresh()
            accounted = {by_to[to] for to in counts} | set(watch.dead_ends) | watch.not_resent
            now = time.monotonic()
            progress = sum(counts.values()) + len(watch.dead_ends) + len(watch.not_resent)
            if progress != last:
                last, last_change = progress, now
            if len(accounted) >= len(by_to):
                complete_at = complete_at or now
                if now - complete_at >= self.grace_s:
                    return counts
            elif now - last_change >= self.quiet_s:
                return counts
            time.sleep(0.5)
