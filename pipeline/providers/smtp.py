"""SMTP relay (RFC 5321) through aiosmtplib, the secondary email provider.

One connection per message: EHLO, optional STARTTLS and AUTH, MAIL, RCPT,
DATA. The message is a proper MIME message (text with an HTML alternative)
carrying a `Message-ID` derived from the send (the provider message id; a resend
in doubt carries the same, `pipeline.providers.repeat`) and the join keys
`X-Herald-Message-Id` and `X-Herald-Tenant`, which bounce reports quote back.

Replies are classified on the reply code and the command it answered
(REPLIES): 4yz transient (including 421 at connect), 552 to RCPT (too many
recipients) transient too; 550/551/553 to RCPT (mailbox unavailable, user not
local, bad mailbox) RecipientUnreachable; 530/534/535/538 or a failed AUTH
ProviderAuthError; any other 5yz InvalidData. Connection failures and
timeouts are transient.
"""

from __future__ import annotations

import email.policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from pipeline.exceptions import (
    DeliveryError,
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RecipientUnreachable,
    TransientError,
)
from pipeline.providers.base import Accepted, Message, SingleSendProvider
from pipeline.providers.errors import ErrorTable
from pipeline.providers.repeat import message_id_header

__all__ = ["OWN_HEADERS", "REPLIES", "Smtp", "classify"]

# Looked up as "<code>", "<command> <code>", "<command> <n>yz", then "<n>yz" (RFC 5321
# writes reply classes as 4yz, 5yz); a reply none of them lists is unexpected: transient.
REPLIES = ErrorTable(
    "smtp",
    {
        "530": ProviderAuthError,  # authentication required
        "534": ProviderAuthError,  # authentication mechanism too weak
        "535": ProviderAuthError,  # authentication credentials invalid
        "538": ProviderAuthError,  # encryption required for the mechanism
        "rcpt 550": RecipientUnreachable,  # mailbox unavailable
        "rcpt 551": RecipientUnreachable,  # user not local
        "rcpt 553": RecipientUnreachable,  # mailbox name not allowed
        "rcpt 552": TransientError,  # too many recipients: like 452
        "4yz": TransientError,
        "auth 5yz": ProviderAuthError,
        "5yz": InvalidData,
    },
    otherwise=TransientError,
)
OWN_HEADERS = frozenset(
    {"from", "to", "subject", "date", "message-id", "x-herald-message-id", "x-herald-tenant"}
)


class Smtp(SingleSendProvider):
    name = "smtp"
    channel = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_email: str,
        from_name: str = "",
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 30.0,
        local_hostname: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.from_email = from_email
        self.from_name = from_name
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout
        self.domain = from_email.rpartition("@")[2] or "herald.invalid"
        # Our own name in EHLO; set it so no reverse DNS lookup of this host happens.
        self.local_hostname = local_hostname or self.domain

    def build(self, message: Message) -> EmailMessage:
        """The MIME message; raises ValueError or TypeError on an unusable address/header."""
        mime = EmailMessage()
        mime["From"] = Address(self.from_name, addr_spec=self.from_email)
        mime["To"] = message.to
        mime["Subject"] = message.subject or ""
        mime["Date"] = formatdate(usegmt=True)
        mime["Message-ID"] = message_id_header(message, self.domain)
        mime["X-Herald-Message-Id"] = message.message_id
        mime["X-Herald-Tenant"] = message.tenant
        for name, value in message.headers.items():
            if name.lower() not in OWN_HEADERS:
                mime[name] = value
        # Quoted-printable keeps the body 7-bit: no reliance on the relay's 8BITMIME.
        mime.set_content(message.text, cte=_cte(message.text))
        if message.html:
            mime.add_alternative(message.html, subtype="html", cte=_cte(message.html))
        return mime

    async def send(self, message: Message) -> Accepted:
        try:
            mime = self.build(message)
            raw = mime.as_bytes(policy=email.policy.SMTP)
        except (ValueError, TypeError, IndexError) as exc:
            raise InvalidData(f"cannot build the message: {exc}", provider=self.name) from exc
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username or None,
            password=self.password or None,
            start_tls=self.starttls,
            timeout=self.timeout,
            local_hostname=self.local_hostname,
        )
        stage = "connect"
        try:
            await client.connect()  # greeting, EHLO, STARTTLS and AUTH
            stage = "mail"
            await client.mail(self.from_email)
            stage = "rcpt"
            await client.rcpt(message.to)
            stage = "data"
            await client.data(raw)
            stage = "done"
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise classify(exc.code, exc.message, "auth") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise classify(exc.code, exc.message, stage) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise ProviderAuthError(
                f"relay lacks a required extension: {exc}", provider=self.name, code=stage
            ) from exc
        except UnicodeEncodeError as exc:
            raise InvalidData(
                "non-ASCII address (SMTPUTF8 not used)", provider=self.name, code=stage
            ) from exc
        except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
            # Once DATA was under way the relay may have taken the message: in doubt.
            raise ProviderTimeout(
                f"timeout during {stage}", provider=self.name, code="timeout",
                in_doubt=stage in ("data", "done"),
            ) from exc  # fmt: skip
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ProviderTimeout(
                f"connection error during {stage}: {type(exc).__name__}",
                provider=self.name, code="network", in_doubt=stage in ("data", "done"),
            ) from exc  # fmt: skip
        finally:
            await _close(client, polite=stage == "done")
        return Accepted(self.name, str(mime["Message-ID"]))


def _cte(text: str) -> str | None:
    return None if text.isascii() else "quoted-printable"


async def _close(client: aiosmtplib.SMTP, *, polite: bool) -> None:
    """QUIT after a sent message; after a failure just drop the connection."""
    if polite and client.is_connected:
        try:
            await client.quit()
            return
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
    client.close()


def classify(code: int, text: str, stage: str) -> DeliveryError:
    """Map an SMTP reply to Herald's error classes; `stage` is the command it answered
    (connect, auth, mail, rcpt, data)."""
    reply_class = f"{code // 100}yz"
    return REPLIES.error(
        str(code),
        f"{text.strip()} (at {stage})",
        keys=(f"{stage} {code}", f"{stage} {reply_class}", reply_class),
    )
