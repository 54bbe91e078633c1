"""The provider simulator and a webhook receiver, in-process on loopback, for unit tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from pipeline.exceptions import AuthError, ValidationError
from pipeline.http.webhooks import verify_and_parse
from pipeline.settings import Settings
from pipeline.simulator.server import SIM_STATE, SimulatorState, build_simulator
from pipeline.simulator.smtp_sink import start_smtp_sink, stop_smtp_sink


@dataclass
class Receiver:
    """The pipeline's side of the webhooks: verify_and_parse on every POST, collect events."""

    settings: Settings
    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        try:
            records = verify_and_parse(
                provider,
                url=self.url + request.path_qs,
                headers=request.headers,
                body=await request.read(),
                settings=self.settings,
            )
        except (AuthError, ValidationError) as exc:
            self.refused.append((provider, type(exc).__name__))
            self.changed.set()
            return web.Response(status=401 if isinstance(exc, AuthError) else 400)
        self.events.extend(records)
        self.changed.set()
        return web.Response(status=200)

    async def wait_until(
        self, done: Callable[[Receiver], bool], within: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait (bounded) until `done(self)`; returns the events."""
        async with asyncio.timeout(within):
            while not done(self):
                self.changed.clear()
                await self.changed.wait()
        return self.events

    def of(self, provider: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["provider"] == provider]


@asynccontextmanager
async def receiver(settings: Settings | None = None) -> AsyncIterator[Receiver]:
    rec = Receiver(settings or Settings())
    app = web.Application()
    app.router.add_post("/webhooks/{provider}", rec.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    rec.url = str(server.make_url("")).rstrip("/")
    try:
        yield rec
    finally:
        await server.close()


@dataclass
class Sim:
    """A running simulator: its URL, state, settings pointing at it, a client session."""

    url: str
    state: SimulatorState
    settings: Settings
    session: aiohttp.ClientSession
    smtp_port: int = 0

    async def fault(self, provider: str, **fault: Any) -> None:
        async with self.session.put(f"{self.url}/_sim/faults/{provider}", json=fault) as resp:
            assert resp.status == 204, await resp.text()

    def recorded(self, provider: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.state.messages if provider is None or m["provider"] == provider]


@asynccontextmanager
async def simulator(
    settings: Settings | None = None, *, smtp: bool = False, whatsapp_wrote: Iterable[str] = ()
) -> AsyncIterator[Sim]:
    """The simulator's HTTP app (and with smtp=True its SMTP sink) on free loopback ports.

    The yielded settings point every provider at it (base URLs, SMTP port). The numbers
    of `whatsapp_wrote` wrote to the business just now: their 24-hour WhatsApp window is
    open, so a text message to them is accepted (to any other it fails with 131047).
    """
    settings = settings or Settings(sim_webhook_delay_ms=0)
    app = build_simulator(settings)
    state = app[SIM_STATE]
    for number in whatsapp_wrote:
        state.whatsapp_inbound["".join(c for c in number if c.isdigit())] = time.time()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    sink = await start_smtp_sink(state, "127.0.0.1", 0) if smtp else None
    smtp_port = int(sink.sockets[0].getsockname()[1]) if sink else 0
    pointed = settings.with_(
        sendgrid_base_url=url,
        twilio_base_url=url,
        vonage_base_url=url,
        whatsapp_base_url=url,
        fcm_base_url=url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
    )
    try:
        async with aiohttp.ClientSession() as session:
            yield Sim(url, state, pointed, session, smtp_port)
    finally:
        if sink is not None:
            state.stopping.set()
            await stop_smtp_sink(sink)
        await server.close()
