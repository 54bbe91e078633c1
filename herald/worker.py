"""`herald worker`: one pipeline worker, all agents and the HTTP ingress.

`build_worker` assembles the pieces from Settings (pure wiring, testable);
`run_worker` hands the app to Faust's Worker, which owns signals and shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import faust
from aiohttp import web
from mode import Service

from herald.topology import Topology, wire
from pipeline.domain.resilience import CircuitBreaker, CircuitState, TokenBucket
from pipeline.domain.templates import TemplateCatalog
from pipeline.http.api import Ingress
from pipeline.http.auth import TokenVerifier
from pipeline.kafka.app import create_app
from pipeline.kafka.catalog import Catalog, dispatch_topic
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.metrics import Metrics
from pipeline.providers import build_providers
from pipeline.runtime import Runtime
from pipeline.settings import Settings


class WorkerServices(Service):
    """Starts with the Faust app: the provider HTTP client and the HTTP ingress."""

    def __init__(
        self,
        app: faust.App,
        runtime: Runtime,
        verifier: TokenVerifier,
        partitions: int,
        **kw: Any,
    ):
        super().__init__(**kw)
        self.app = app
        self.partitions = partitions
        self.runtime = runtime
        self.verifier = verifier
        self.session: aiohttp.ClientSession | None = None
        self.runner: web.AppRunner | None = None

    def ready(self) -> bool:
        app = self.app
        recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        return bool(recovered and not app.rebalancing and not app.in_recovery)

    async def on_start(self) -> None:
        s = self.runtime.settings
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=300)
        )
        rt = self.runtime
        rt.providers.update(build_providers(s, self.session))
        limits = s.rate_limit_map
        for provider in (p for chain in rt.providers.values() for p in chain):
            rt.breakers[provider.name] = CircuitBreaker(
                provider.name,
                threshold=s.breaker_threshold,
                probe_after_s=s.breaker_probe_s,
                on_change=self._circuit_changed,
            )
            rt.metrics.circuit_state.labels(provider.name).set(0)
            if provider.name in limits:
                # The budget is shared per partition: every worker owns some partitions.
                rate = limits[provider.name] / max(1, self.partitions)
                rt.buckets[provider.name] = TokenBucket(rate=rate, burst=max(1.0, rate))
        web_app = Ingress(self.runtime, self.verifier, self.ready).build()
        self.runner = web.AppRunner(web_app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, s.http_host, s.http_port).start()

    def _circuit_changed(self, provider: str, state: CircuitState) -> None:
        self.runtime.metrics.circuit_state.labels(provider).set(state.value)

    @Service.timer(1.0)
    async def _tick_breakers(self) -> None:
        """Open circuits become half-open after their probe interval, traffic or not."""
        for breaker in self.runtime.breakers.values():
            breaker.tick()

    async def on_stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()


@dataclass
class BuiltWorker:
    app: faust.App
    topology: Topology
    services: WorkerServices


def build_worker(settings: Settings) -> BuiltWorker:
    verifier = TokenVerifier(
        secret=settings.jwt_secret,
        jwks_file=settings.jwks_file,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    app = create_app(settings)
    catalog = Catalog.load(settings.topics_file)
    topology = wire(
        app,
        settings,
        topics=catalog,
        codec=AvroCodec(SchemaSet.from_dir(settings.schemas_dir)),
        templates=TemplateCatalog.from_dir(settings.templates_dir),
        metrics=Metrics(),
    )
    partitions = catalog[dispatch_topic("email", "urgent")].partitions
    services = WorkerServices(app, topology.runtime, verifier, partitions)
    app.add_dependency(services)
    return BuiltWorker(app, topology, services)


def run_worker(settings: Settings) -> None:
    built = build_worker(settings)
    worker = faust.Worker(built.app, loglevel=settings.log_level, quiet=True)
    # Faust's terminal spinner sets the root logger to DEBUG so that it can spin on
    # every record: every debug line of aiokafka and Faust then costs a LogRecord
    # (about 4% of the worker's CPU under load) and escape codes land in the logs.
    worker.spinner = None
    worker.execute_from_commandline()
