"""What the HTTP handlers need from the process that serves them: the `Door`.

Two processes serve the same route table. The worker serves it inline (`InlineDoor`:
its own tables, its Faust sinks) and `herald ingress` serves it without any stream
processing (`pipeline.http.ingress_door.IngressDoor`: a plain producer, a view of the
preferences topic, the worker asked over HTTP for what only the worker knows). The
handlers speak to this interface only, so neither door branches in a handler.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pipeline.domain.idempotency import Seen, decide
from pipeline.domain.ids import message_key
from pipeline.domain.limits import Limits
from pipeline.domain.state import public_view
from pipeline.domain.statuses import OUTCOMES
from pipeline.domain.templates import TemplateCatalog
from pipeline.metrics import Metrics
from pipeline.settings import Settings

if TYPE_CHECKING:  # the ingress process never imports Faust
    from pipeline.runtime import Runtime

__all__ = ["WAIT_POLL_S", "Door", "DoorTopic", "InlineDoor"]

DoorTopic = Literal["requests", "audit", "provider_events"]  # the topics the door writes
WAIT_POLL_S = 0.02  # how often `Prefer: wait` looks at the local state table


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

    def preferences(self, key: str) -> Mapping[str, Any] | None:
        """The recipient's latest preferences record (`tenant:userId`), if known here."""
        ...

    async def reserved(self, authorization: str, tenant: str, message_id: str, body: str) -> Seen:
        """What a client-chosen id's reservation makes of a body with fingerprint `body`."""
        ...

    async def state(
        self, authorization: str, tenant: str, message_id: str, wait_s: float = 0.0
    ) -> dict[str, Any] | None:
        """The message's public state (None: unknown); with `wait_s`, once it has an outcome
        or the wait is over, whichever comes first."""
        ...

    async def produce(self, topic: DoorTopic, records: Sequence[tuple[str, Any]]) -> None:
        """Produce `(key, value)` records and return once the broker acknowledged every one."""
        ...


class InlineDoor:
    """The worker's own door: its tables are local and its Faust sinks produce."""

    def __init__(self, rt: Runtime, ready: Callable[[], bool]) -> None:
        self.rt = rt
        self._ready = ready
        self.settings = rt.settings
        self.metrics = rt.metrics
        self.templates = rt.templates
        self.limits = rt.limits

    @property
    def available_channels(self) -> set[str]:
        return self.rt.available_channels

    def ready(self) -> bool:
        return self._ready()

    def preferences(self, key: str) -> Mapping[str, Any] | None:
        """This worker's copy of the preferences table: with several workers a partition
        owned elsewhere is not seen here, and the pipeline blocks the message instead."""
        return self.rt.tables.preferences.get(key)

    async def reserved(self, authorization: str, tenant: str, message_id: str, body: str) -> Seen:
        """Reads this worker's copy of the idempotency table: a reservation held on a
        partition another worker owns, or a request on Kafka that ingest has not reached
        yet, is not seen here; ingest then dead-letters a conflicting body."""
        return decide(
            self.rt.tables.idempotency.get(message_key(tenant, message_id)), body=body,
            now=time.time(), ttl_s=self.settings.idempotency_ttl_s,
        )  # fmt: skip

    async def state(
        self, authorization: str, tenant: str, message_id: str, wait_s: float = 0.0
    ) -> dict[str, Any] | None:
        key = message_key(tenant, message_id)
        deadline = time.monotonic() + wait_s
        doc = self.rt.tables.state.get(key)
        while (doc is None or doc["status"] not in OUTCOMES) and time.monotonic() < deadline:
            await asyncio.sleep(WAIT_POLL_S)
            doc = self.rt.tables.state.get(key)
        return None if doc is None else public_view(doc)

    async def produce(self, topic: DoorTopic, records: Sequence[tuple[str, Any]]) -> None:
        sink = getattr(self.rt.sinks, topic)
        futures = [await sink.send(key=key, value=value) for key, value in records]
        for fut in futures:
            await fut  # acknowledged by the broker
