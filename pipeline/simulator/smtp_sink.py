"""The simulator's SMTP sink (aiosmtpd): accepts mail like a relay and records it.

Runs in the caller's event loop and records into the simulator's shared list
(provider "smtp", channel "email", one entry per accepted RCPT, providerMessageId
= the Message-ID header). There is no SMTP webhook, so nothing is posted back.

Conventions: a recipient at `bounce.test` is refused at RCPT with `550 5.1.1`
(a real relay bounces it asynchronously; here the refusal is synchronous), one
at `invalid.test` with `553 5.1.3`. When SMTP_USERNAME is set, AUTH with
SMTP_USERNAME/SMTP_PASSWORD is required (535 otherwise; 530 if skipped).

Faults (`PUT /_sim/faults/smtp`), taken once per connection through the same
`apply_fault` as the HTTP providers, rendered SMTP's way: `down` answers `421`
in place of the greeting and hangs up, `timeout` stalls before the greeting,
`5xx` answers `451` to MAIL and `429` answers `452` to MAIL; `latencyMs`
delays the greeting.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import hmac
import warnings
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from pipeline.simulator.state import Failure, FaultKind, SimProvider, SimulatorState, apply_fault

__all__ = [
    "MAIL_REPLIES",
    "NAME",
    "SIM",
    "SinkHandler",
    "SinkSMTP",
    "start_smtp_sink",
    "stop_smtp_sink",
]

NAME = "smtp"
MAIL_REPLIES = {
    FaultKind.SERVER_ERROR: "451 4.3.0 Requested action aborted: local error in processing",
    FaultKind.RATE_LIMITED: "452 4.3.1 Too many messages, slow down and try again later",
}


class SinkHandler:
    """aiosmtpd hooks: refuse by convention or fault, record what DATA delivers."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        failure = server.failure if isinstance(server, SinkSMTP) else None
        if failure is not None and failure.kind in MAIL_REPLIES:
            return MAIL_REPLIES[failure.kind]
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        domain = address.rpartition("@")[2].lower()
        if "@" not in address or domain == "invalid.test":
            return f"553 5.1.3 <{address}>: Recipient address rejected: bad destination mailbox"
        if domain == "bounce.test":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        message_id = str(parsed.get("Message-ID", "")) or None
        content = _content(parsed)
        content["envelopeFrom"] = envelope.mail_from
        recorded = ""
        for rcpt in envelope.rcpt_tos:
            recorded = self.state.record(NAME, "email", rcpt, content, message_id)
        return f"250 2.0.0 Ok: queued as {recorded}"


class SinkSMTP(SMTP):
    """aiosmtpd's SMTP session, with the connect-time faults in front of the greeting."""

    def __init__(self, handler: SinkHandler, state: SimulatorState, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.state = state
        self.failure: Failure | None = None

    async def _handle_client(self) -> None:
        try:
            self.failure = await apply_fault(self.state, NAME)
        except asyncio.CancelledError:  # the client gave up during a stall (EOF cancels us)
            self._hang_up()
            raise
        kind = self.failure.kind if self.failure is not None else None
        if kind is FaultKind.TIMEOUT:
            self._hang_up()
            return
        if kind is FaultKind.DOWN:
            await self.push("421 4.3.2 Service not available, closing transmission channel")
            self._hang_up()
            return
        await super()._handle_client()

    def _hang_up(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _content(message: EmailMessage) -> dict[str, Any]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return {
        "subject": str(message.get("Subject", "")),
        "from": str(message.get("From", "")),
        "text": text.get_content() if isinstance(text, EmailMessage) else None,
        "html": html.get_content() if isinstance(html, EmailMessage) else None,
        "headers": {name: str(value) for name, value in message.items()},
        "messageId": message.get("X-Herald-Message-Id"),
        "tenant": message.get("X-Herald-Tenant"),
    }


async def start_smtp_sink(state: SimulatorState, host: str, port: int) -> asyncio.Server:
    """Listen on host:port (0: a free port) in the running loop; close() the server to stop."""
    loop = asyncio.get_running_loop()
    handler = SinkHandler(state)
    settings = state.settings
    auth: dict[str, Any] = {}
    if settings.smtp_username:

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (
                hmac.compare_digest(data.login, settings.smtp_username.encode())
                & hmac.compare_digest(data.password, settings.smtp_password.encode())
            )
            return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535

        auth = {"auth_required": True, "auth_require_tls": False, "authenticator": authenticate}

    def factory() -> SinkSMTP:
        with warnings.catch_warnings():
            # AUTH without TLS is what a loopback test double wants.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return SinkSMTP(
                handler, state, hostname="smtp.herald-sim.test", ident="Herald simulator",
                loop=loop, **auth,
            )  # fmt: skip

    return await loop.create_server(factory, host, port)


async def stop_smtp_sink(server: asyncio.Server) -> None:
    server.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 5)


SIM = SimProvider(names=(NAME,))
