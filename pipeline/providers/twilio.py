"""Twilio Programmable Messaging: SMS (primary) and WhatsApp (secondary), one endpoint.

`POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, HTTP Basic `sid:token`,
form-encoded `To`, `From`, `Body`, `StatusCallback`. WhatsApp is the same call
with `whatsapp:+E164` addresses. 201 carries the message `sid`; errors are
`{"code", "message", "more_info", "status"}` and are classified on `code`
(ERRORS), then on the HTTP status.

The join key travels in the callback URL: `StatusCallback` is
`{public_url}/webhooks/twilio?tenant=T&messageId=M`, and Twilio signs the full
URL, so the webhook side gets both back authenticated.

WhatsApp codes (assumed from Twilio's error dictionary; Twilio mostly reports
them in the status callback, the simulator answers them synchronously):
63003 "channel could not find the To address" (not a WhatsApp user) and 63024
(invalid recipient) are RecipientUnreachable; 63016 (free-form message outside
the 24 h window, a template is needed) is RecipientUnreachable too: not
retryable now on this channel; 63018 (channel rate limit) is RateLimited.

Outside the window Twilio's equivalent of an approved template is a Content Template:
`ContentSid` (`HX...`, assigned by Twilio when the template is created in its Content
API) with `ContentVariables` (`{"1": ..., "2": ...}`). Herald's templates name the
approved template as Meta knows it (name and language), not by a Twilio content SID,
so there is nothing to put in `ContentSid`: `TwilioWhatsApp` always sends the text.
Outside the window Twilio refuses it (63016) and the message falls back to the next
channel. Mapping template names to content SIDs is left to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from pipeline.exceptions import (
    DeliveryError,
    ProviderAuthError,
    RateLimited,
    RecipientUnreachable,
)
from pipeline.providers.base import Accepted, Message, SingleSendProvider
from pipeline.providers.errors import HTTP_STATUSES, ErrorTable
from pipeline.providers.transport import HttpCall, retry_after

__all__ = ["ERRORS", "TwilioSms", "TwilioWhatsApp", "classify"]

ERRORS = ErrorTable(
    "twilio",
    {
        "20429": RateLimited,  # too many concurrent requests: back off
        "63018": RateLimited,  # WhatsApp: the channel's rate limit
        "20003": ProviderAuthError,  # authenticate: our account SID or token
        # The recipient cannot get a message here (the next channel may reach them):
        "21211": RecipientUnreachable,  # invalid To
        "21608": RecipientUnreachable,  # unverified number on a trial account
        "21610": RecipientUnreachable,  # unsubscribed with STOP
        "21612": RecipientUnreachable,  # unroutable
        "21614": RecipientUnreachable,  # not SMS-capable
        "21635": RecipientUnreachable,  # landline
        "63003": RecipientUnreachable,  # WhatsApp: not a WhatsApp user
        "63016": RecipientUnreachable,  # WhatsApp: outside the 24 h window
        "63024": RecipientUnreachable,  # WhatsApp: invalid recipient
        **HTTP_STATUSES,
    },
)


class _TwilioMessages(SingleSendProvider):
    name = "twilio"
    channel = "sms"
    prefix = ""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        public_url: str,
        timeout: float = 30.0,
    ) -> None:
        self.http = HttpCall(session, self.name, timeout)
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.authorization = aiohttp.encode_basic_auth(account_sid, auth_token)
        self.sender = self.address(from_number)
        self.callback = public_url.rstrip("/") + "/webhooks/twilio"

    def address(self, number: str) -> str:
        return number if number.startswith(self.prefix) else self.prefix + number

    def form(self, message: Message) -> dict[str, str]:
        query = urlencode({"tenant": message.tenant, "messageId": message.message_id})
        return {
            "To": self.address(message.to),
            "From": self.sender,
            "Body": message.text,
            "StatusCallback": f"{self.callback}?{query}",
        }

    async def send(self, message: Message) -> Accepted:
        answer = await self.http.post(
            self.url, data=self.form(message), headers={"Authorization": self.authorization}
        )
        if 200 <= answer.status < 300:
            return Accepted(self.name, str(answer.json.get("sid") or ""))
        raise classify(answer.status, answer.json, answer.headers, provider=self.name)


class TwilioSms(_TwilioMessages):
    """SMS through Twilio: `To` and `From` in E.164."""

    name = "twilio"
    channel = "sms"
    prefix = ""


class TwilioWhatsApp(_TwilioMessages):
    """WhatsApp through Twilio: the same API with `whatsapp:+E164` addresses."""

    name = "twilio-whatsapp"
    channel = "whatsapp"
    prefix = "whatsapp:"


def classify(
    status: int,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    *,
    provider: str = "twilio",
) -> DeliveryError:
    """Map a Twilio error answer to Herald's error classes, keyed on Twilio's `code`."""
    try:
        code = int(body.get("code") or 0)
    except (TypeError, ValueError):
        code = 0
    return ERRORS.http_error(
        status,
        str(code or ""),
        str(body.get("message") or ""),
        retry_after=retry_after(headers),
        provider=provider,
    )
