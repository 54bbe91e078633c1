"""The door of `herald ingress`: validate, check consent, produce; no stream processing.

It serves the same route table as the worker (`pipeline.http.routes`) over the
`Door` interface: records go out through a plain acknowledged producer
(`pipeline.kafka.producer`), consent is read from an in-memory view of the
compacted preferences topic (`pipeline.kafka.preferences_view`), and what lives in
the worker's tables (a message's state, an id's reservation, a user's profile) is asked
of the worker (`pipeline.http.worker_client`). So a POST never waits behind the worker's
stream processing: the worker's event loop is not this process's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.domain.idempotency import Seen
from pipeline.domain.ids import user_key
from pipeline.domain.limits import Limits
from pipeline.domain.routing import CHANNELS
from pipeline.domain.templates import TemplateCatalog
from pipeline.http.door import DoorTopic, ProfileRoute
from pipeline.http.worker_client import WorkerClient
from pipeline.kafka.catalog import (
    AUDIT,
    PROFILES,
    PROVIDER_EVENTS,
    REQUESTS,
    SERVICE_WINDOWS,
    STATUS,
    TEMPLATES,
)
from pipeline.kafka.preferences_view import PreferencesView
from pipeline.kafka.producer import AckedProducer
from pipeline.kafka.template_view import TemplateView
from pipeline.metrics import Metrics
from pipeline.settings import Settings

__all__ = ["DOOR_TOPICS", "IngressDoor"]

# The door's topics, and the Avro record each holds.
DOOR_TOPICS: Mapping[DoorTopic, tuple[str, str]] = {
    "requests": (REQUESTS, "NotificationRequest"),
    "status": (STATUS, "NotificationStatus"),
    "audit": (AUDIT, "AuditRecord"),
    "provider_events": (PROVIDER_EVENTS, "ProviderEvent"),
    "templates": (TEMPLATES, "TemplateDocument"),
    "service_windows": (SERVICE_WINDOWS, "WhatsAppServiceWindow"),
    "profiles": (PROFILES, "UserProfile"),
}


class IngressDoor:
    """What the ingress's handlers use: settings, metrics, templates, limits and the rest."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics,
        templates: TemplateCatalog,
        limits: Limits,
        producer: AckedProducer,
        preferences_view: PreferencesView,
        worker: WorkerClient,
        template_view: TemplateView | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.templates = templates
        self.limits = limits
        self.producer = producer
        self.preferences_view = preferences_view
        self.worker = worker
        self.template_view = template_view  # the tenants' saved templates into `templates`

    @property
    def available_channels(self) -> set[str]:
        """Every channel: the worker wires a lane and its providers for each of them."""
        return set(CHANNELS)

    def ready(self) -> bool:
        """Ready once the producer is connected and the views have caught up."""
        views = [self.preferences_view, self.template_view]
        return self.producer.connected and all(v.caught_up for v in views if v is not None)

    async def preferences(
        self, authorization: str, tenant: str, user_id: str, *, forwarded: bool = False
    ) -> Mapping[str, Any] | None:
        """From the view of every partition: nothing to ask of a worker."""
        return self.preferences_view.get(user_key(tenant, user_id))

    async def profile(
        self, authorization: str, tenant: str, user_id: str, *, forwarded: bool = False,
        via: ProfileRoute = "recipient",
    ) -> Mapping[str, Any] | None:  # fmt: skip
        """Asked of the worker (the profiles table is the worker's), which reads it where it
        lives once it holds the writes before the call."""
        return await self.worker.profile(authorization, user_id, via)

    async def reserved(self, authorization: str, tenant: str, message_id: str, body: str) -> Seen:
        """The worker's decision; unanswered in time, the request is accepted (ingest
        then drops a duplicate and dead-letters a conflicting body)."""
        seen = await self.worker.reserved(authorization, message_id, body)
        if seen is None:
            self.metrics.idempotency_unchecked.inc()
            return Seen.NEW
        return seen

    async def state(
        self, authorization: str, tenant: str, message_id: str, wait_s: float = 0.0,
        *, forwarded: bool = False, written: bool = False,
    ) -> dict[str, Any] | None:  # fmt: skip
        """Asked of the worker, which reads it where it lives (`pipeline.http.routing`)."""
        return await self.worker.state(authorization, message_id, wait_s)

    async def produce(
        self, topic: DoorTopic, records: Sequence[tuple[str, Any]],
        headers: Mapping[str, bytes] | None = None,
    ) -> None:  # fmt: skip
        await self.producer.produce(DOOR_TOPICS[topic][0], records, headers)
