"""Twilio Programmable Messaging: SMS (primary) and WhatsApp (secondary), one endpoint.

`POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, HTTP Basic `sid:token`,
form-encoded `To`, `From`, `Body`, `StatusCallback`. WhatsApp is the same call
with `whatsapp:+E164` addresses. 201 carries the message `sid`; errors are
`{"code", "message", "more_info", "status"}` and are classified on `code`.

The join key travels in the callback URL: `StatusCallback` is
`{public_url}/webhooks/twilio?tenant=T&messageId=M`, and Twilio signs the full
URL, so the webhook side gets both back authenticated.

WhatsApp codes (assumed from Twilio's error dictionary; Twilio mostly reports
them in the status callback, the simulator answers them synchronously):
63003 "channel could not find the To address" (not a WhatsApp user) and 63024
(invalid recipient) are RecipientUnreachable; 63016 (free-form message outside
the 24 h window, a template is needed) is RecipientUnreachable too: not
retryable now on this channel; 63018 (channel rate limit) is transient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from pipeline.exceptions import (
    DeliveryError,
    InvalidData,
    ProviderAuthError,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)
from pipeline.providers._common import response_json, retry_after, transport_error
from pipeline.providers.base import Accepted, Message

TRANSIENT_CODES = frozenset({20429, 63018})
AUTH_CODES = frozenset({20003})
# The recipient cannot get a message here: invalid To (21211), unsubscribed with
# STOP (21610), unroutable (21612), not SMS-capable (21614), unverified on a trial
# account (21608), landline (21635); WhatsApp: not a user (63003), outside the
# 24 h window (63016), invalid recipient (63024).
UNREACHABLE_CODES = frozenset({21211, 21608, 21610, 21612, 21614, 21635, 63003, 63016, 63024})


class _TwilioMessages:
    name = "twilio"
    channel = "sms"
    prefix = ""
    supports_batch = False

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
        self.session = session
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.authorization = aiohttp.encode_basic_auth(account_sid, auth_token)
        self.sender = self.address(from_number)
        self.callback = public_url.rstrip("/") + "/webhooks/twilio"
        self.timeout = aiohttp.ClientTimeout(total=timeout)

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
        try:
            async with self.session.post(
                self.url,
                data=self.form(message),
                headers={"Authorization": self.authorization},
                timeout=self.timeout,
            ) as resp:
                body = await response_json(resp)
                if 200 <= resp.status < 300:
                    return Accepted(self.name, str(body.get("sid") or ""))
                raise classify(resp.status, body, resp.headers, provider=self.name)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(self.name, exc) from exc


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
    detail = f"{code or status}: {str(body.get('message') or '')[:300]}"
    key = str(code or status)
    if code == 20429 or (code not in AUTH_CODES | UNREACHABLE_CODES and status == 429):
        return RateLimited(detail, provider=provider, code=key, retry_after=retry_after(headers))
    if code in TRANSIENT_CODES:
        return TransientError(detail, provider=provider, code=key, retry_after=retry_after(headers))
    if code in AUTH_CODES:
        return ProviderAuthError(detail, provider=provider, code=key)
    if code in UNREACHABLE_CODES:
        return RecipientUnreachable(detail, provider=provider, code=key)
    if status >= 500:
        return TransientError(detail, provider=provider, code=key)
    if status in (401, 403):
        return ProviderAuthError(detail, provider=provider, code=key)
    return InvalidData(detail, provider=provider, code=key)
