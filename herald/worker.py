"""`herald worker`: one pipeline worker, all agents and the HTTP ingress.

`build_worker` assembles the pieces from Settings, whole: the providers (with their
HTTP client), circuit breakers, rate budgets, tables and agents exist before the worker
starts. `run_worker` opens that HTTP client on the event loop the worker will run on,
then hands the app to Faust's Worker, which owns signals and shutdown. Before that
it checks the webhook keys that are set (an unusable one stops the worker) and
logs which webhook receivers are off for want of their secret.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import faust
import structlog
from aiohttp import web
from mode import Service

from herald.topology import Topology, wire
from pipeline.domain.breaker import CircuitBreaker, CircuitState
from pipeline.heap import GlibcHeap
from pipeline.http.api import Ingress
from pipeline.http.auth import TokenVerifier
from pipeline.http.door import InlineDoor
from pipeline.http.protocol import IngressRunner
from pipeline.http.routing import Router
from pipeline.http.webhooks import check_keys, receivers_off
from pipeline.kafka.app import HeraldApp, create_app
from pipeline.kafka.catalog import Catalog
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.kafka.owners import Owners
from pipeline.kafka.rocksdb_budget import RocksDBBudget
from pipeline.kafka.template_view import TemplateView
from pipeline.metrics import Metrics
from pipeline.providers import build_providers
from pipeline.runtime import Runtime
from pipeline.settings import Settings
from pipeline.template_setup import starting_catalog

__all__ = [
    "BuiltWorker",
    "WorkerServices",
    "breakers_for",
    "build_worker",
    "open_session",
    "run_worker",
]


class WorkerServices(Service):
    """Runs with the Faust app: the HTTP ingress, the breakers' clock, the HTTP clients
    (the providers', and one to the group's other workers for reads they hold), and the
    view of the tenants' saved templates (`herald.templates`) applied to the catalog."""

    def __init__(
        self,
        app: faust.App,
        runtime: Runtime,
        verifier: TokenVerifier,
        session: aiohttp.ClientSession | None,
        heap: GlibcHeap | None = None,
        **kw: Any,
    ):
        super().__init__(**kw)
        self.app = app
        self.runtime = runtime
        self.verifier = verifier
        self.session = session
        self.heap = heap
        self.peers: aiohttp.ClientSession | None = None  # to the group's other workers
        self.runner: IngressRunner | None = None
        self.template_view = TemplateView(runtime.codec, runtime.templates)

    def ready(self) -> bool:
        app = self.app
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        settled = recovered and not app.rebalancing and not app.in_recovery
        return bool(settled and self.template_view.caught_up)

    async def on_start(self) -> None:
        s = self.runtime.settings
        # Several workers in a group: keys in the others' partitions are asked of them, over a
        # client of its own (provider calls in flight can fill the providers' pool).
        self.peers = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        owners = Owners(self.app, self.ready)
        router = Router(
            owners, self.peers, check_timeout_s=s.peer_check_timeout_s,
            read_catch_up_s=s.read_catch_up_s,
        )  # fmt: skip
        web_app = Ingress(InlineDoor(self.runtime, self.ready, router), self.verifier).build()
        self.runner = IngressRunner(web_app, access_log=None)
        await self.runner.setup()
        # Behind `herald ingress` the worker serves on its own port (the query side and the
        # idempotency check the ingress asks for); alone, on the public one.
        await web.TCPSite(self.runner, s.http_host, s.worker_port).start()

    @Service.timer(1.0)
    async def _tick_breakers(self) -> None:
        """Open circuits become half-open after their probe interval, traffic or not."""
        for breaker in self.runtime.breakers.values():
            breaker.tick()

    @Service.task
    async def _read_templates(self) -> None:
        """Every saved template, then each one saved later (a failure stops the worker)."""
        await self.template_view.run(self.runtime.settings.bootstrap)

    @Service.task
    async def _follow_service_windows(self) -> None:
        """Keep the view of WhatsApp users' last messages reading (pipeline.kafka.
        service_windows); if it stops (the broker away), start it again."""
        view = self.runtime.service_windows
        while view is not None and not self.should_stop:
            try:
                await view.run(self.runtime.settings.bootstrap)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # unknown until it reads again: windows closed
                structlog.get_logger("herald.worker").warning(
                    "service-window view stopped; restarting", error=repr(exc)
                )
                await self.sleep(5.0)

    @Service.task
    async def _trim_heap(self) -> None:
        """Free pages back to the system now and then (pipeline.heap says why)."""
        interval = self.runtime.settings.malloc_trim_s
        if self.heap is None or interval <= 0:
            return
        while not self.should_stop:
            await self.sleep(interval)
            self.heap.trim()

    async def on_stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        for session in (self.session, self.peers):
            if session is not None:
                await session.close()
        control = self.runtime.consumer
        if control is not None and control.offsets is not None:
            await control.offsets.stop()


@dataclass
class BuiltWorker:
    app: HeraldApp
    topology: Topology
    services: WorkerServices


def breakers_for(
    settings: Settings, names: list[str], metrics: Metrics
) -> dict[str, CircuitBreaker]:
    """One circuit breaker per provider, reporting its state to `herald_circuit_state`."""

    def changed(provider: str, state: CircuitState) -> None:
        metrics.circuit_state.labels(provider).set(state.value)

    out = {}
    for name in names:
        out[name] = CircuitBreaker(
            name, threshold=settings.breaker_threshold, probe_after_s=settings.breaker_probe_s,
            on_change=changed,
        )  # fmt: skip
        metrics.circuit_state.labels(name).set(0)
    return out


def build_worker(
    settings: Settings, session: aiohttp.ClientSession | None, heap: GlibcHeap | None = None
) -> BuiltWorker:
    """Every part of a worker. Without a `session` it has no providers (describing only);
    with a `heap`, /metrics shows malloc's figures and the worker trims it."""
    verifier = TokenVerifier(
        secret=settings.jwt_secret,
        jwks_file=settings.jwks_file,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    metrics = Metrics()
    rocksdb = RocksDBBudget.create(
        memory_mb=settings.rocksdb_memory_mb, write_buffer_mb=settings.rocksdb_write_buffer_mb
    )
    metrics.watch_rocksdb(memtables=rocksdb.memtable_bytes, cache=rocksdb.cache_bytes)
    if heap is not None:
        metrics.watch_heap(heap.figures)
    providers = build_providers(settings, session) if session is not None else {}
    names = [p.name for chain in providers.values() for p in chain]
    app = create_app(settings)
    topology = wire(
        app,
        settings,
        topics=Catalog.load(settings.topics_file),
        codec=AvroCodec(SchemaSet.from_dir(settings.schemas_dir)),
        templates=starting_catalog(settings),
        metrics=metrics,
        providers=providers,
        breakers=breakers_for(settings, names, metrics),
        rocksdb=rocksdb,
    )
    services = WorkerServices(app, topology.runtime, verifier, session, heap)
    app.add_dependency(services)
    return BuiltWorker(app, topology, services)


async def open_session() -> aiohttp.ClientSession:
    """The providers' HTTP client (created in a coroutine, on the worker's loop)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=300))


def run_worker(settings: Settings) -> None:
    heap = GlibcHeap.load()
    if heap is not None:  # before any thread has an arena of its own
        heap.limit_arenas(settings.malloc_arena_max)
    check_keys(settings)
    off = receivers_off(settings)
    if off:
        structlog.get_logger("herald.worker").warning(
            "webhooks.receivers_off",
            providers=sorted(off),
            detail="POST /webhooks/{provider} answers 404 until the secret is set",
            settings=sorted(off.values()),
        )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    built = build_worker(settings, loop.run_until_complete(open_session()), heap)
    worker = faust.Worker(built.app, loop=loop, loglevel=settings.log_level, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG so that it can spin on
    # every record: every debug line of aiokafka and Faust then costs a LogRecord
    # (about 4% of the worker's CPU under load) and escape codes land in the logs.
    worker.spinner = None
    worker.execute_from_commandline()
