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

from .app import create_app
from .auth import TokenVerifier
from .catalog import Catalog
from .codecs import AvroCodec, SchemaSet
from .ingress import Ingress
from .metrics import Metrics
from .providers import SendGrid
from .runtime import Runtime
from .settings import Settings
from .templates import TemplateCatalog
from .topology import Topology, wire


class WorkerServices(Service):
    """Starts with the Faust app: the provider HTTP client and the HTTP ingress."""

    def __init__(self, app: faust.App, runtime: Runtime, verifier: TokenVerifier, **kw: Any):
        super().__init__(**kw)
        self.app = app
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
        self.runtime.providers["email"] = SendGrid(
            self.session,
            base_url=s.sendgrid_base_url,
            api_key=s.sendgrid_api_key,
            from_email=s.email_from,
            from_name=s.email_from_name,
            timeout=s.provider_timeout_s,
        )
        web_app = Ingress(self.runtime, self.verifier, self.ready).build()
        self.runner = web.AppRunner(web_app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, s.http_host, s.http_port).start()

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
    topology = wire(
        app,
        settings,
        topics=Catalog.load(settings.topics_file),
        codec=AvroCodec(SchemaSet.from_dir(settings.schemas_dir)),
        templates=TemplateCatalog.from_dir(settings.templates_dir),
        metrics=Metrics(),
    )
    services = WorkerServices(app, topology.runtime, verifier)
    app.add_dependency(services)
    return BuiltWorker(app, topology, services)


def run_worker(settings: Settings) -> None:
    built = build_worker(settings)
    worker = faust.Worker(built.app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
