"""The whole topology, wired in one place.

::

    herald.notifications.requests ──► [ingest] validate · dedup (idempotency table)
       key tenant:userId  · recipient (profiles table) · consent (preferences) · route · render
                                             │              │                │
                             herald.audit ◄──┘              │                │
                                     herald.dispatch.<channel>.<urgent|bulk>  │
                                              key tenant:userId      ▲   ▲    │
                                                   │      fallback ──┘   │    │
                                [send-<channel>-<lane>] send ledger ·    │    │
                                  rate budget · breaker · failover ·     │    │
                                  micro-batches          RETRY ──► herald.scheduler
                                                   │        [scheduler] schedule table,
                                                   │        a timer fires due entries
                       herald.notifications.status ◄──────────────────────────┘
                              key tenant:messageId ◄── [provider-events] ◄──
                                                   │      herald.provider.events ◄──
                                [status] fold into the      POST /webhooks/{provider}
                                notification-state table
                                (what GET /v1/notifications/{id} reads)

    herald.users.preferences ──► [preferences] preferences table
    herald.templates ──► every process's template catalog (PUT /v1/templates writes it)
    POST /webhooks/whatsapp-cloud (inbound) ──► herald.whatsapp.service-windows ──► every
        worker's view of when each user last wrote (WhatsApp: text or approved template)
    herald.users.profiles ──► [profiles] profiles table (ingest resolves recipients from it)
    every stage ──► herald.notifications.dlq (original bytes + reason)

Kafka hops are where they buy something: the lane topics re-split traffic by
channel and priority (a campaign never delays a gate change) and decouple the
provider's pace from ingest; the scheduler topic makes a waiting retry durable
without blocking its partition; the status topic is an audience (analysts, the
query side). Ingest, compliance, enrich and route share a key and run as plain
functions in one agent (`pipeline.domain.planning.plan_request`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from agents.ingest import ingest
from agents.preferences import preferences
from agents.profiles import profiles
from agents.provider_events import provider_events
from agents.scheduler import fire_due, schedule_agent
from agents.send import send
from agents.status import status
from herald.description import StageSpec, TableSpec, TimerSpec, Topology, ViewSpec
from pipeline.budgets import RateBudgets
from pipeline.domain.breaker import CircuitBreaker
from pipeline.domain.retry import RetryPolicy
from pipeline.domain.routing import CHANNELS, LANES
from pipeline.domain.templates import TemplateCatalog
from pipeline.kafka import catalog as names
from pipeline.kafka.app import HeraldApp
from pipeline.kafka.catalog import Catalog, dispatch_topic
from pipeline.kafka.codecs import AvroCodec, register_with_faust
from pipeline.kafka.offsets import EndOffsets
from pipeline.kafka.progress import ConsumerControl, FoldWatch, StateBarrier
from pipeline.kafka.rocksdb_budget import BudgetedTable, RocksDBBudget
from pipeline.kafka.service_windows import ServiceWindowView
from pipeline.metrics import Metrics
from pipeline.providers.base import Provider
from pipeline.runtime import Runtime, Sinks, Tables
from pipeline.settings import Settings

__all__ = ["HOLDS", "wire"]

# What each table holds; its stable name, key and changelog are the catalog's
# (topics.yaml: <app id>-<name>-changelog), and a unit test holds the two together.
HOLDS = {
    "idempotency": "where the message was first accepted",
    "preferences": "consent per channel and category",
    "profiles": "contact points, locale, time zone, attributes",
    "send-ledger": "intent, then outcome, of one provider call",
    "notification-state": "status, attempts, history (GET reads it)",
    "schedule": "due time, topic, key, payload",
}


def wire(
    app: HeraldApp,
    settings: Settings,
    *,
    topics: Catalog,
    codec: AvroCodec,
    templates: TemplateCatalog,
    metrics: Metrics,
    providers: Mapping[str, Sequence[Provider]],
    breakers: Mapping[str, CircuitBreaker],
    rocksdb: RocksDBBudget,
) -> Topology:
    """Declare every topic, table and agent of Herald on `app`, with stable names.

    `providers` (per channel, in failover order) and their `breakers` come built: the
    runtime every agent shares is complete before the worker starts.
    """
    codec_names = register_with_faust(codec)

    def source(name: str) -> Any:
        spec = topics[name]
        return app.topic(
            name, key_serializer="raw", value_serializer="raw", partitions=spec.partitions
        )

    def sink(name: str) -> Any:
        spec = topics[name]
        return app.topic(
            name,
            key_serializer="raw",
            value_serializer=codec_names[spec.value],
            partitions=spec.partitions,
        )

    changelogs = {name: topics.changelog_for(settings.app_id, name) for name in HOLDS}

    def table_help(name: str) -> str:
        return f"{changelogs[name].key} -> {HOLDS[name]}"

    def table(name: str) -> Any:
        changelog, help = changelogs[name], table_help(name)
        # A tracked table: its changelog writes join the batch's effects (acknowledged
        # by the broker before the batch's offsets may be committed); its RocksDB
        # databases share the worker's one memory budget.
        tracked = BudgetedTable(
            app, name=name, default=None, partitions=changelog.partitions, help=help,
            beacon=app.tables.beacon, budget=rocksdb,
        )  # fmt: skip
        return app.tables.add(tracked)

    dispatch_names = {(c, lane): dispatch_topic(c, lane) for c in CHANNELS for lane in LANES}
    sinks = Sinks(
        requests=sink(names.REQUESTS),
        status=sink(names.STATUS),
        dlq=sink(names.DLQ),
        audit=sink(names.AUDIT),
        scheduler=sink(names.SCHEDULER),
        provider_events=sink(names.PROVIDER_EVENTS),
        templates=sink(names.TEMPLATES),
        dispatch={k: sink(n) for k, n in dispatch_names.items()},
        service_windows=sink(names.SERVICE_WINDOWS),
        profiles=sink(names.PROFILES),
    )
    tables = Tables(
        idempotency=table("idempotency"),
        preferences=table("preferences"),
        send_ledger=table("send-ledger"),
        state=table("notification-state"),
        schedule=table("schedule"),
        profiles=table("profiles"),
    )
    partitions = topics[dispatch_topic("email", "urgent")].partitions
    budgets = RateBudgets.from_limits(settings.rate_limit_map, partitions, metrics)
    consumer = ConsumerControl(app, offsets=EndOffsets(settings.bootstrap))
    fold_watch = FoldWatch()
    barrier = StateBarrier(fold_watch, consumer, names.STATUS, topics[names.STATUS].partitions)
    profile_watch = FoldWatch()  # a profile read waits for the PUT before it, the same way
    profile_barrier = StateBarrier(
        profile_watch, consumer, names.PROFILES, topics[names.PROFILES].partitions
    )
    runtime = Runtime(
        settings, codec, templates, metrics, sinks, tables, ownership=app.ownership,
        providers=providers, breakers=breakers, budgets=budgets,
        policy=RetryPolicy(scale=settings.retry_scale),
        limits=topics.limits(http_max_body=settings.http_max_body),
        fold_watch=fold_watch, consumer=consumer, state_barrier=barrier,
        service_windows=ServiceWindowView(
            codec, phone_number_id=settings.whatsapp_phone_number_id,
            owner=settings.whatsapp_window_tenant,
        ),
        profile_watch=profile_watch, profile_barrier=profile_barrier,
    )  # fmt: skip
    topo = Topology(runtime)
    topo.table_specs = [TableSpec(name, changelogs[name].name, table_help(name)) for name in HOLDS]
    # Read by `herald.worker.WorkerServices` (and the ingress), applied to `templates`.
    topo.views.append(ViewSpec(
        "templates", names.TEMPLATES,
        f"{topics[names.TEMPLATES].key} -> a tenant's saved template (the catalog renders it)",
    ))  # fmt: skip
    # Read by the worker (`pipeline.kafka.service_windows`), asked by the WhatsApp sends.
    topo.views.append(ViewSpec(
        "service-windows", names.SERVICE_WINDOWS,
        f"{topics[names.SERVICE_WINDOWS].key} -> when a WhatsApp user last wrote (24 h window)",
    ))  # fmt: skip

    def agent(
        name: str, topic: str, fn: Callable[..., Awaitable[None]], *, writes: tuple[str, ...],
        uses: tuple[str, ...] = (), family: str = "", window: int = 0, **kw: Any,
    ) -> None:  # fmt: skip
        bound = partial(fn, rt=runtime, stage=runtime.stage(name, window=window), **kw)

        async def run(stream: Any) -> None:
            await bound(stream)

        run.__doc__ = fn.__doc__
        run.__name__ = run.__qualname__ = name.replace("-", "_")
        app.agent(source(topic), name=name)(run)
        topo.stages.append(StageSpec(name, topic, writes, uses, family))

    lanes = tuple(dispatch_names.values())
    # Stages reading topics that clients produce to check each record's key by the
    # catalog's rule before anything is keyed by it.
    agent("ingest", names.REQUESTS, ingest,
          writes=(*lanes, names.STATUS, names.AUDIT, names.DLQ),
          uses=("idempotency", "preferences", "profiles"),
          key_rule=topics[names.REQUESTS].key)  # fmt: skip
    agent("preferences", names.PREFERENCES, preferences, writes=(names.DLQ,),
          uses=("preferences",), key_rule=topics[names.PREFERENCES].key)  # fmt: skip
    agent("profiles", names.PROFILES, profiles, writes=(names.DLQ,),
          uses=("profiles",), key_rule=topics[names.PROFILES].key)  # fmt: skip
    for (channel, lane), topic in dispatch_names.items():
        agent(f"send-{channel}-{lane}", topic, send, channel=channel,
              family="send-<channel>-<lane>",
              # batches overlap: up to this many records (calls) in flight per lane
              window=settings.send_concurrency,
              writes=(names.STATUS, names.SCHEDULER, *lanes, names.DLQ),
              uses=("send-ledger", "profiles"))  # fmt: skip
    agent("scheduler", names.SCHEDULER, schedule_agent, writes=(names.DLQ,), uses=("schedule",))
    agent("provider-events", names.PROVIDER_EVENTS, provider_events,
          writes=(names.STATUS, names.DLQ), uses=("notification-state",))  # fmt: skip
    agent("status", names.STATUS, status, writes=(names.DLQ,), uses=("notification-state",))

    async def scheduler_tick() -> None:
        await fire_due(runtime, app)

    app.timer(settings.scheduler_tick_s, name="scheduler-tick")(scheduler_tick)
    topo.timers.append(TimerSpec(
        "scheduler-tick", settings.scheduler_tick_s,
        "fires the due entries of the schedule table to their topics",
        writes=(*lanes, names.REQUESTS, names.SCHEDULER),
    ))  # fmt: skip
    return topo
