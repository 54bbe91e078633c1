"""The provider simulator: the real providers' endpoints, on loopback, for tests and demos.

It answers the same wire protocol as the real services (so the adapters are
the production adapters), checks credentials the way each one does, records
every message it accepted, posts signed delivery webhooks back, and takes
fault scripts. One module per provider; this one mounts them all from
REGISTRY and runs the HTTP server and the SMTP sink around one state.

| provider (module)          | endpoint                                      | credentials     |
| -------------------------- | --------------------------------------------- | --------------- |
| sendgrid                   | POST /v3/mail/send                            | Bearer API key  |
| twilio                     | POST /2010-04-01/Accounts/{sid}/Messages.json | Basic sid:token |
| twilio-whatsapp (twilio)   | the same, with whatsapp:+E164 addresses       | Basic sid:token |
| vonage                     | POST /sms/json (form or JSON)                 | key and secret  |
| whatsapp-cloud             | POST /vNN.0/{phone_number_id}/messages        | Bearer token    |
| fcm                        | POST /v1/projects/{p}/messages:send, /token   | Bearer OAuth    |
| smtp (smtp_sink)           | SMTP on HERALD_SIM_SMTP_PORT                  | AUTH if set     |

Inspection and faults (`inspection`): `GET`/`DELETE /_sim/messages`,
`PUT /_sim/faults/{provider}`, `DELETE /_sim/faults`. Faults are applied by
one `apply_fault` (`state`) and rendered in each provider's own shape:
Twilio 500 code 20500 and 429 code 20429 with Retry-After; Vonage HTTP 200
with status "5" and "1"; WhatsApp 500 code 131000 and 429 code 130429; FCM
500 INTERNAL and 429 QUOTA_EXCEEDED with Retry-After; SendGrid 500 and 429
with X-RateLimit-Reset; SMTP 451 and 452 to MAIL; `down` is 503 from every
HTTP provider (421 from SMTP); `timeout` never answers.

Recipient conventions: a phone ending in 0000 is not a WhatsApp user
(WhatsApp Cloud error 131026, Twilio WhatsApp error 63003); a push token
starting `unregistered-` is UNREGISTERED (404); an address at `bounce.test` is
accepted, then bounced by webhook (SMTP refuses it at RCPT with 550 5.1.1);
an address at `invalid.test` or a phone starting `+999` is rejected as
invalid: SendGrid 400, SMTP 553 5.1.3, Twilio 21211, Vonage status "3",
WhatsApp Cloud 100. A push token starting `invalid-` is INVALID_ARGUMENT.

Webhooks are posted HERALD_SIM_WEBHOOK_DELAY_MS after acceptance to
`{HERALD_SIM_WEBHOOK_URL}/webhooks/{provider}` (Twilio: the StatusCallback URL;
Vonage: the `callback` parameter when given), signed with the signing
function of the provider's receiver in `pipeline.http.webhooks`. SMTP and FCM
have no webhook. A webhook that cannot be posted is logged and dropped.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from pipeline.exceptions import ConfigError
from pipeline.settings import Settings
from pipeline.simulator import fcm, inspection, sendgrid, smtp_sink, twilio, vonage, whatsapp_cloud
from pipeline.simulator.smtp_sink import start_smtp_sink, stop_smtp_sink
from pipeline.simulator.state import SIM_STATE, SimProvider, SimulatorState

__all__ = [
    "MAX_BODY",
    "PROVIDERS",
    "REGISTRY",
    "SIM_STATE",
    "Simulator",
    "SimulatorState",
    "build_simulator",
    "run_simulator",
]

log = structlog.get_logger("herald.simulator")

REGISTRY: tuple[SimProvider, ...] = (
    sendgrid.SIM,
    smtp_sink.SIM,
    twilio.SIM,
    vonage.SIM,
    whatsapp_cloud.SIM,
    fcm.SIM,
)
PROVIDERS = tuple(name for provider in REGISTRY for name in provider.names)
MAX_BODY = 4 * 1024 * 1024


def build_simulator(settings: Settings, state: SimulatorState | None = None) -> web.Application:
    """The simulator's HTTP app; `app[SIM_STATE]` is its SimulatorState."""
    state = state or SimulatorState(settings)
    app = web.Application(client_max_size=MAX_BODY)
    app[SIM_STATE] = state

    async def webhook_client(app: web.Application) -> AsyncIterator[None]:
        state.session = aiohttp.ClientSession()
        yield
        state.stopping.set()
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        await state.session.close()
        state.session = None

    async def on_shutdown(app: web.Application) -> None:
        state.stopping.set()  # stalled ("timeout") calls return, so shutdown is prompt

    app.cleanup_ctx.append(webhook_client)
    app.on_shutdown.append(on_shutdown)
    for provider in REGISTRY:
        app.router.add_routes(provider.routes)
    app.router.add_routes(inspection.routes(PROVIDERS))
    return app


class Simulator:
    """Both servers (HTTP and the SMTP sink) around one SimulatorState."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = SimulatorState(settings)
        self.app = build_simulator(settings, self.state)
        self._runner: web.AppRunner | None = None
        self._smtp: asyncio.Server | None = None

    async def start(self) -> None:
        settings = self.settings
        # A request once received is processed even if the client hangs up, as a real
        # provider does: a worker killed during a call may still have sent the message.
        self._runner = web.AppRunner(
            self.app, handler_cancellation=False, shutdown_timeout=5.0, access_log=None
        )
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, settings.sim_host, settings.sim_port).start()
        except OSError as exc:
            await self.stop()
            raise ConfigError(
                f"simulator cannot listen on {settings.sim_host}:{settings.sim_port}: {exc}"
            ) from exc
        try:
            self._smtp = await start_smtp_sink(
                self.state, settings.sim_host, settings.sim_smtp_port
            )
        except OSError as exc:
            await self.stop()
            raise ConfigError(
                f"SMTP sink cannot listen on {settings.sim_host}:{settings.sim_smtp_port} "
                f"(HERALD_SIM_SMTP_PORT): {exc}"
            ) from exc

    @property
    def smtp_port(self) -> int:
        assert self._smtp is not None and self._smtp.sockets
        return int(self._smtp.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.state.stopping.set()
        if self._smtp is not None:
            await stop_smtp_sink(self._smtp)
            self._smtp = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# The secret each provider's webhooks are signed with (environment variable -> setting).
_SIGNING_SECRETS = {
    "HERALD_SIM_SENDGRID_WEBHOOK_PRIVATE_KEY": "sim_sendgrid_webhook_private_key",
    "TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "VONAGE_SIGNATURE_SECRET": "vonage_signature_secret",
    "WHATSAPP_APP_SECRET": "whatsapp_app_secret",
}


def run_simulator(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then stop both servers cleanly."""
    asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    simulator = Simulator(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await simulator.start()
    log.info(
        "simulator up",
        http=settings.sim_base_url,
        smtp=f"{settings.sim_host}:{simulator.smtp_port}",
    )
    unsigned = [var for var in _SIGNING_SECRETS if not getattr(settings, _SIGNING_SECRETS[var])]
    if unsigned:  # no key ships: its webhooks would be refused, so say why
        log.warning("webhooks cannot be signed (secret not set)", unset=unsigned)
    try:
        await stop.wait()
    finally:
        await simulator.stop()
