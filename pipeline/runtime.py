"""What the agents and the HTTP ingress share: sinks, tables, providers, metrics.

Built by `herald.topology.wire` and passed to every agent. Every record it
produces joins the current batch's effects (`pipeline.kafka.effects`), so the batch
loop can wait for the broker before it acknowledges the batch.
"""

from __future__ import annotations

import traceback
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from faust import streams as faust_streams

from pipeline.budgets import RateBudgets
from pipeline.domain.breaker import CircuitBreaker
from pipeline.domain.ids import message_id_for_offset, message_key
from pipeline.domain.limits import Limits
from pipeline.domain.provider_events import RecentIds
from pipeline.domain.records import dead_letter, dlq_status
from pipeline.domain.retry import RetryPolicy
from pipeline.domain.templates import TemplateCatalog
from pipeline.exceptions import DecodeError
from pipeline.kafka.batches import Stage
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.effects import track
from pipeline.kafka.ownership import Ownership
from pipeline.kafka.progress import ConsumerControl, FoldWatch, StateBarrier
from pipeline.kafka.service_windows import ServiceWindowView
from pipeline.metrics import Metrics
from pipeline.providers.base import Provider
from pipeline.settings import Settings

__all__ = ["Runtime", "Sinks", "Tables", "describe_exception", "in_event"]

log = structlog.get_logger("herald")
T = TypeVar("T")


@dataclass
class Sinks:
    """Topics the pipeline writes (Faust topics with the Avro codec of their record)."""

    requests: Any
    status: Any
    dlq: Any
    audit: Any
    scheduler: Any
    provider_events: Any
    templates: Any  # the tenants' saved templates (the HTTP door writes them)
    dispatch: Mapping[tuple[str, str], Any]  # (channel, lane) -> topic
    service_windows: Any = None  # WhatsApp inbound messages (the webhook, in the worker)
    profiles: Any = None  # herald.users.profiles (the door's PUT of a profile)


@dataclass
class Tables:
    idempotency: Any
    preferences: Any
    send_ledger: Any
    state: Any
    schedule: Any
    profiles: Any = field(default_factory=dict)  # tenant:userId -> UserProfile


@dataclass
class Runtime:
    settings: Settings
    codec: AvroCodec
    templates: TemplateCatalog
    metrics: Metrics
    sinks: Sinks
    tables: Tables
    ownership: Ownership
    providers: Mapping[str, Sequence[Provider]]  # channel -> its providers, in failover order
    breakers: Mapping[str, CircuitBreaker]  # provider -> its circuit (per worker)
    budgets: RateBudgets
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limits: Limits = field(default_factory=Limits.compute)  # from the topics' limits
    # Scheduled entries this worker fired and whose FIRED marker is not back yet (the
    # timer's own memory, so a tick does not fire an entry twice; lost on restart, when
    # an entry may fire once more and the send ledger makes that harmless).
    fired: set[str] = field(default_factory=set)
    # Provider event ids this worker turned into a status lately (bounded, expiring):
    # a repeated event id counts once (`pipeline.domain.provider_events`).
    recent_events: RecentIds = field(default_factory=RecentIds)
    # The status stage's progress, for stages that wait on a message's state.
    fold_watch: FoldWatch = field(default_factory=FoldWatch)
    # High watermarks and fetch pause/resume (None without a Faust consumer: tests).
    consumer: ConsumerControl | None = None
    # Whether a state absent from the table is truly absent (read-your-writes; None: tests).
    state_barrier: StateBarrier | None = None
    # When each WhatsApp user last wrote (the 24-hour window; None: unknown, every window
    # closed). The worker keeps it reading (`herald.worker.WorkerServices`).
    service_windows: ServiceWindowView | None = None
    # The profiles stage's progress, and whether a profile read sees the writes before it.
    profile_watch: FoldWatch = field(default_factory=FoldWatch)
    profile_barrier: StateBarrier | None = None

    @property
    def available_channels(self) -> set[str]:
        """Channels that have a lane and at least one provider."""
        lanes = {channel for channel, _lane in self.sinks.dispatch}
        return {c for c in lanes if self.providers.get(c)}

    def sink_for(self, topic: str) -> Any:
        """The sink of a topic the scheduler may target (a lane or the requests)."""
        for sink in (*self.sinks.dispatch.values(), self.sinks.requests):
            if sink.get_topic_name() == topic:
                return sink
        raise KeyError(topic)

    def stage(self, name: str, *, batch_max: int | None = None, window: int = 0) -> Stage:
        """The batch loop of stage `name` (dead letters go through this runtime); with a
        `window`, batches overlap up to that many records in hand (`Stage`)."""

        async def dead_letter(event: Any, reason: str, error: str) -> None:
            with in_event(event):
                await self.emit_dead_letter(event.message, stage=name, reason=reason, error=error)
                await self.emit_final_status(event.message, name, f"{reason}: {error}")

        s = self.settings
        return Stage(
            name, self.ownership, dead_letter, batch_max=batch_max or s.batch_max,
            window_s=s.batch_window_s, ack_timeout_s=s.ack_timeout_s, window=window,
        )  # fmt: skip

    async def each(
        self, events: Iterable[Any], stage: str, handle: Callable[[Any], Awaitable[T | None]]
    ) -> list[tuple[Any, T]]:
        """`handle(event)` for every event as the current event; what each returned.

        A record that raises goes to the dead letter topic (internal-error) and the
        others go on: one bad record never stops its partition.
        """
        results = []
        for event in events:
            with in_event(event):
                try:
                    result = await handle(event)
                except Exception as exc:
                    error = describe_exception(exc)
                    await self.emit_dead_letter(
                        event.message, stage=stage, reason="internal-error", error=error
                    )
                    await self.emit_final_status(event.message, stage, f"internal-error: {error}")
                    continue
            if result is not None:
                results.append((event, result))
        return results

    def per_record(
        self, stage: str, handle: Callable[[Any], Awaitable[None]]
    ) -> Callable[[list[Any]], Awaitable[None]]:
        """A batch handler that calls `handle(message)` for each record (see `each`)."""

        async def handle_batch(events: list[Any]) -> None:
            await self.each(events, stage, lambda event: handle(event.message))

        return handle_batch

    async def produce(self, sink: Any, key: Any, value: Any) -> Any:
        """Produce one record; its delivery joins the current batch's effects."""
        fut = await sink.send(key=key, value=value)
        track(fut)
        return fut

    async def emit_status(self, record: dict[str, Any], stage: str) -> None:
        key = message_key(record["tenant"], record["messageId"])
        await self.produce(self.sinks.status, key, record)
        self.metrics.notifications.labels(stage, record["status"]).inc()

    async def emit_final_status(self, message: Any, stage: str, error: str) -> None:
        """The DLQ status of the message a dead-lettered record carried (a request or a
        dispatch), so a message whose record ends in the DLQ never reads PENDING."""
        try:
            name = self.codec.writer_name(message.value)
            if name not in ("NotificationRequest", "ChannelDispatch"):
                return
            record = self.codec.decode(name, message.value)
        except DecodeError:
            return  # undecodable: no message to report on
        if not record.get("messageId"):  # as ingest names it
            record["messageId"] = message_id_for_offset(
                message.topic, message.partition, message.offset
            )
        status = dlq_status(record, error)
        if status is not None:
            await self.emit_status(status, stage)

    async def decode(self, message: Any, schema: str, stage: str) -> dict[str, Any] | None:
        """The record in `message`, or None once undecodable bytes are dead-lettered."""
        try:
            return self.codec.decode(schema, message.value)
        except DecodeError as exc:
            await self.emit_dead_letter(message, stage=stage, reason="decode-error", error=str(exc))
            return None

    async def emit_dead_letter(
        self,
        message: Any,
        *,
        stage: str,
        reason: str,
        error: str,
        acknowledged: bool = False,
        **extra: Any,
    ) -> None:
        """Route a record that cannot be processed to the DLQ, with its original bytes."""
        record = dead_letter(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=_as_bytes(message.key),
            value=_as_bytes(message.value),
            stage=stage,
            reason=reason,
            error=error,
            limit=self.limits.dead_letter_room(_as_bytes(message.key)),
            **extra,
        )
        fut = await self.produce(self.sinks.dlq, message.key, record)
        if acknowledged:  # wait for the broker: the caller records it as done next
            await fut
        self.metrics.dead_letters.labels(stage, reason).inc()
        log.warning(
            "dead-letter",
            stage=stage,
            reason=reason,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            message_id=extra.get("message_id"),
            truncated=record["truncated"] or None,
            error_type=error.split("(", 1)[0][:60] if reason == "internal-error" else None,
        )


@contextmanager
def in_event(event: Any) -> Iterator[None]:
    """Make `event` the current one, as Faust does per event in `stream.events()`.

    `stream.take_events` hands over a list without it, and Faust refuses a table
    write outside an event (it needs the event's partition for the changelog).
    Uses Faust's own context variable (faust-streaming is pinned for this).
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def describe_exception(exc: BaseException) -> str:
    """`repr(exc)` and where it was raised (file:line), for internal-error dead letters."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 2)[-2:]}:{tb[-1].lineno}" if tb else ""
    return f"{exc!r}{where}"


def _as_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode()
