"""`herald ingress`: the public HTTP API in a process of its own, off the worker's loop.

The worker's event loop runs Faust's stream processing; an HTTP request served
there waits behind whatever the stages are doing. The ingress serves the same
route table (`pipeline.http.routes`) with no stream processing at all: it
validates, applies the tenant quotas, checks consent against its view of the
preferences topic, produces with a plain acknowledged producer and answers; it
verifies providers' webhooks and produces their events. What only the worker
knows (a message's state, an id's reservation) it asks of the worker's own HTTP
(`HERALD_WORKER_URL`). Several ingresses may run side by side, each with its
own quotas (per process, as per worker).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from pipeline.exceptions import ConfigError
from pipeline.http.api import Ingress
from pipeline.http.auth import TokenVerifier
from pipeline.http.ingress_door import DOOR_TOPICS, IngressDoor
from pipeline.http.protocol import IngressRunner
from pipeline.http.webhooks import check_keys, receivers_off
from pipeline.http.worker_client import WorkerClient
from pipeline.kafka.catalog import Catalog
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.kafka.preferences_view import PreferencesView
from pipeline.kafka.producer import AckedProducer
from pipeline.kafka.template_view import TemplateView
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.template_setup import starting_catalog

__all__ = ["RunningIngress", "build_door", "run_ingress", "serving"]

log = structlog.get_logger("herald.ingress")


def build_door(settings: Settings, session: aiohttp.ClientSession) -> IngressDoor:
    """The ingress's door, whole, from settings (nothing started yet)."""
    if not settings.worker_http_port and not settings.worker_url:
        raise ConfigError(
            "herald ingress needs the worker's HTTP: set HERALD_WORKER_HTTP_PORT (the worker "
            "serves there) or HERALD_WORKER_URL"
        )
    codec = AvroCodec(SchemaSet.from_dir(settings.schemas_dir))
    topics = Catalog.load(settings.topics_file)
    templates = starting_catalog(settings)
    return IngressDoor(
        settings,
        metrics=Metrics(),
        templates=templates,
        limits=topics.limits(http_max_body=settings.http_max_body),
        producer=AckedProducer(
            settings.bootstrap, codec, {name: schema for name, schema in DOOR_TOPICS.values()}
        ),
        preferences_view=PreferencesView(codec),
        template_view=TemplateView(codec, templates),
        worker=WorkerClient(
            session,
            settings.worker_base_url,
            settings.worker_check_timeout_s,
            read_catch_up_s=settings.read_catch_up_s,
        ),
    )


@dataclass
class RunningIngress:
    door: IngressDoor
    port: int
    view: asyncio.Future[Any]  # the views' readers: the ingress stops if one dies


@asynccontextmanager
async def serving(settings: Settings, port: int | None = None) -> AsyncIterator[RunningIngress]:
    """The ingress serving on `port` (default HERALD_HTTP_PORT; 0: any free one)."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
    door = build_door(settings, session)
    verifier = TokenVerifier(
        secret=settings.jwt_secret, jwks_file=settings.jwks_file,
        issuer=settings.jwt_issuer, audience=settings.jwt_audience,
    )  # fmt: skip
    runner = IngressRunner(Ingress(door, verifier).build(), access_log=None)
    views = [door.preferences_view, door.template_view]
    view: asyncio.Future[Any] = asyncio.gather(
        *(v.run(settings.bootstrap) for v in views if v is not None)
    )
    try:
        await door.producer.start()
        await runner.setup()
        site = web.TCPSite(runner, settings.http_host, settings.http_port if port is None else port)
        await site.start()
        bound = runner.addresses[0][1]
        yield RunningIngress(door, int(bound), view)
    finally:
        view.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await view
        await runner.cleanup()
        await door.producer.stop()
        await session.close()


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serving(settings) as running:
        log.info("ingress.serving", port=running.port, worker=settings.worker_base_url)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, running.view}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if running.view.done():  # consent or templates would go stale: stop, loudly
            raise ConfigError(f"a view stopped: {running.view.exception()!r}")


def run_ingress(settings: Settings) -> None:
    check_keys(settings)
    off = receivers_off(settings)
    if off:
        log.warning(
            "webhooks.receivers_off", providers=sorted(off),
            detail="POST /webhooks/{provider} answers 404 until the secret is set",
            settings=sorted(off.values()),
        )  # fmt: skip
    asyncio.run(_main(settings))
