"""What the HTTP handlers need from the process that serves them: the `Door`.

Two processes serve the same route table. The worker serves it inline (`InlineDoor`:
its own tables, its Faust sinks) and `herald ingress` serves it without any stream
processing (`pipeline.http.ingress_door.IngressDoor`: a plain producer, a view of the
preferences topic, the worker asked over HTTP for what only the worker knows). The
handlers speak to this interface only, so neither door branches in a handler.

With several workers in one group, a worker's door reaches the state and the
preferences that live in another worker's partitions through its `Router`
(`pipeline.http.routing`): at most one hop, and 503 `rebalancing` rather than a
false 404 while the partitions move.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pipeline.domain.idempotency import Seen, decide
from pipeline.domain.ids import message_key, user_key
from pipeline.domain.limits import Limits
from pipeline.domain.state import public_view
from pipeline.domain.statuses import OUTCOMES
from pipeline.domain.templates import TemplateCatalog
from pipeline.exceptions import Rebalancing, StateBehind, WorkerUnavailable
from pipeline.http.routing import Router
from pipeline.metrics import Metrics
from pipeline.settings import Settings

if TYPE_CHECKING:  # the ingress process never imports Faust
    from pipeline.kafka.progress import StateBarrier
    from pipeline.runtime import Runtime

__all__ = [
    "SETTLE_S", "WAIT_POLL_S", "AbsenceCheck", "Door", "DoorTopic", "InlineDoor", "ProfileRoute",
]  # fmt: skip

# What the door writes.
DoorTopic = Literal[
    "requests", "status", "audit", "provider_events", "templates", "service_windows", "profiles"
]
# Which route a profile is asked of another worker by: the public GET (scope users:manage)
# or the internal one a door asks before it answers a POST (scope notifications:send).
ProfileRoute = Literal["profile", "recipient"]
WAIT_POLL_S = 0.02  # how often `Prefer: wait` looks at the local state table
SETTLE_S = 2.0  # how long a read waits for moving partitions to settle before its 503


class Door(Protocol):
    """Everything a handler may use besides the request: the same for both doors."""

    settings: Settings
    metrics: Metrics
    templates: TemplateCatalog
    limits: Limits

    @property
    def available_channels(self) -> set[str]: ...

    def ready(self) -> bool:
        """Whether this process serves (readiness)."""
        ...

    async def preferences(
        self, authorization: str, tenant: str, user_id: str, *, forwarded: bool = False
    ) -> Mapping[str, Any] | None:
        """The recipient's latest preferences record, if known (`forwarded`: asked by
        another worker, so answered from here)."""
        ...

    async def profile(
        self, authorization: str, tenant: str, user_id: str, *, forwarded: bool = False,
        via: ProfileRoute = "recipient",
    ) -> Mapping[str, Any] | None:  # fmt: skip
        """The user's profile, including every PUT acknowledged before the call (None: no
        profile); asked of the worker that holds it by the route `via`."""
        ...

    async def reserved(self, authorization: str, tenant: str, message_id: str, body: str) -> Seen:
        """What a client-chosen id's reservation makes of a body with fingerprint `body`."""
        ...

    async def state(
        self, authorization: str, tenant: str, message_id: str, wait_s: float = 0.0,
        *, forwarded: bool = False, written: bool = False,
    ) -> dict[str, Any] | None:  # fmt: skip
        """The message's public state (None: unknown); with `wait_s`, once it has an outcome
        or the wait is over, whichever comes first (`forwarded`: answered from here;
        `written`: the caller just wrote it, so an absent state is not waited for)."""
        ...

    async def produce(
        self, topic: DoorTopic, records: Sequence[tuple[str, Any]],
        headers: Mapping[str, bytes] | None = None,
    ) -> None:  # fmt: skip
        """Produce `(key, value)` records (each with `headers`) and return once the broker
        acknowledged every one."""
        ...


class AbsenceCheck:
    """Whether a message absent from the state table where this worker holds it is truly
    absent (read-your-writes): the door wrote its PENDING before the 202, so once the
    projection has folded what the status partition held when first asked, yes."""

    def __init__(self, barrier: StateBarrier | None, timeout_s: float) -> None:
        self.barrier = barrier
        self.timeout_s = timeout_s
        self.mark: tuple[int, int] | None = None
        self.asked_by = 0.0

    async def settled(self, key: str, now: float) -> bool:
        """True: absent for sure (or nothing to ask). False: look again soon. Past the
        timeout with the projection still behind: StateBehind (503, never a false 404)."""
        if self.barrier is None:
            return True
        if self.mark is None:
            self.mark, self.asked_by = await self.barrier.mark(key), now + self.timeout_s
            if self.mark is None:  # cannot tell: neither shown nor denied
                raise StateBehind("the broker did not say where the status topic ends")
        if self.barrier.passed(self.mark):
            return True
        if now >= self.asked_by:
            raise StateBehind("the state has not caught up with the statuses written before")
        return False


class InlineDoor:
    """The worker's own door: its tables are local and its Faust sinks produce.

    With a `router`, a key in another worker's partition is asked of that worker; without
    one (a worker alone in tests), every key is read here.
    """

    def __init__(
        self, rt: Runtime, ready: Callable[[], bool], router: Router | None = None
    ) -> None:
        self.rt = rt
        self._ready = ready
        self.router = router
        self.settings = rt.settings
        self.metrics = rt.metrics
        self.templates = rt.templates
        self.limits = rt.limits

    @property
    def available_channels(self) -> set[str]:
        return self.rt.available_channels

    def ready(self) -> bool:
        return self._ready()

    def _holds(self, table: Any, key: str) -> bool:
        return self.router is None or self.router.holds(table, key)

    async def preferences(
        self, authorization: str, tenant: str, user_id: str, *, forwarded: bool = False
    ) -> Mapping[str, Any] | None:
        """The preferences table where the user's partition lives. Unanswered by the
        worker that owns it, None: the door accepts and the pipeline blocks the message
        instead (BLOCKED, audited), counted in `herald_consent_unchecked_total`."""
        table, key = self.rt.tables.preferences, user_key(tenant, user_id)
        peer = None if self.router is None else self.router.peer(table, key, forwarded=forwarded)
        if peer is not None:
            self.metrics.forwarded.labels("preferences").inc()
            try:
                return await peer.consent(authorization, user_id)
            except WorkerUnavailable:
                self.metrics.consent_unchecked.inc()
                return None
        found: Mapping[str, Any] | None = table.get(key)
        if found is None and forwarded and not self._holds(table, key):
            raise Rebalancing("this worker does not hold the user's preferences now")
        return found

    async def profile(
        self, authorization: str, tenant: str, user_id: str, *, forwarded: bool = False,
        via: ProfileRoute = "recipient",
    ) -> Mapping[str, Any] | None:  # fmt: skip
        """The profiles table where the user's partition lives, once the profiles stage has
        folded what the topic held when asked (`StateBarrier.wait`: read-your-writes, else
        503 `state-behind`); a partition moving between workers: 503 `rebalancing`."""
        table, key = self.rt.tables.profiles, user_key(tenant, user_id)
        peer = None if self.router is None else self.router.peer(table, key, forwarded=forwarded)
        if peer is not None:
            self.metrics.forwarded.labels("profile").inc()
            return await peer.profile(authorization, user_id, via)
        holds = self._holds(table, key)
        if not holds and forwarded:
            raise Rebalancing("this worker does not hold the user's profile now")
        if holds and self.rt.profile_barrier is not None:
            await self.rt.profile_barrier.wait(key, self.settings.read_catch_up_s)
        found: Mapping[str, Any] | None = table.get(key)
        return found

    async def reserved(self, authorization: str, tenant: str, message_id: str, body: str) -> Seen:
        """Reads this worker's copy of the idempotency table: a reservation held on a
        partition another worker owns, or a request on Kafka that ingest has not reached
        yet, is not seen here; ingest then dead-letters a conflicting body."""
        return decide(
            self.rt.tables.idempotency.get(message_key(tenant, message_id)), body=body,
            now=time.time(), ttl_s=self.settings.idempotency_ttl_s,
        )  # fmt: skip

    async def state(
        self, authorization: str, tenant: str, message_id: str, wait_s: float = 0.0,
        *, forwarded: bool = False, written: bool = False,
    ) -> dict[str, Any] | None:  # fmt: skip
        """Read where the message's partition lives: here, or asked of its owner (once).

        A key absent here while this worker does not hold its partition (a rebalance)
        is looked for again for up to SETTLE_S (or the client's wait), then 503. A key
        absent where this worker holds it is absent only once the projection has folded
        every status the broker held then (`StateBarrier`); until then, for up to
        HERALD_READ_CATCH_UP_TIMEOUT, it is looked for again, then 503 `state-behind`.
        """
        table, key = self.rt.tables.state, message_key(tenant, message_id)
        now = time.monotonic()
        deadline, settle_by = now + wait_s, now + max(wait_s, SETTLE_S)
        # A POST's own `Prefer: wait` knows the message exists: past the wait, 202.
        barrier = None if written else self.rt.state_barrier
        absence = AbsenceCheck(barrier, self.settings.read_catch_up_s)
        while True:
            peer = (
                None if self.router is None else self.router.peer(table, key, forwarded=forwarded)
            )
            if peer is not None:
                self.metrics.forwarded.labels("state").inc()
                return await peer.state(authorization, message_id, max(0.0, deadline - now))
            doc = table.get(key)
            if doc is not None:
                if doc["status"] in OUTCOMES or now >= deadline:
                    return public_view(doc)
            elif self._holds(table, key):
                if now >= deadline and await absence.settled(key, now):
                    doc = table.get(key)  # folded while the barrier was asked?
                    return None if doc is None else public_view(doc)
            elif now >= settle_by:
                raise Rebalancing("the partition of this message is moving between workers")
            await asyncio.sleep(WAIT_POLL_S)
            now = time.monotonic()

    async def produce(
        self, topic: DoorTopic, records: Sequence[tuple[str, Any]],
        headers: Mapping[str, bytes] | None = None,
    ) -> None:  # fmt: skip
        sink = getattr(self.rt.sinks, topic)
        extra = {"headers": dict(headers)} if headers else {}
        futures = [await sink.send(key=key, value=value, **extra) for key, value in records]
        for fut in futures:
            await fut  # acknowledged by the broker
