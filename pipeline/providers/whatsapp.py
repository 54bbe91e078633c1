"""WhatsApp Business Cloud API, the primary WhatsApp provider.

`POST {base}/{version}/{phone_number_id}/messages`, `Authorization: Bearer`,
JSON with `messaging_product: "whatsapp"`, `to` (digits, no `+`) and either a
`template` (when the message names one: required outside the 24 h window) or
`text`. `biz_opaque_callback_data` (`tenant:messageId`) is echoed in every
status webhook: the join key. 200 carries `messages[0].id` (`wamid...`).

Errors are `{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}`
and are keyed on `code` (the HTTP status varies).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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

# Throughput (130429), pair rate limit (131056), app (4) and account (80007) limits,
# generic (131000) and service unavailable (133004): back off and retry.
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131056})  # throughput and pair limits
TRANSIENT_CODES = frozenset({131000, 133004})
# Token invalid or expired (0, 190), no permission (10).
AUTH_CODES = frozenset({0, 10, 190})
INVALID_PARAMETER = 100
UNREACHABLE = {
    131026: "undeliverable: not a WhatsApp user, blocked us, or an old app",
    131047: "more than 24 h since the user last wrote: only a template can be sent now",
    131049: "marketing message cap reached for this user: not again on this channel for ~24 h",
}


class WhatsAppCloud:
    name = "whatsapp-cloud"
    channel = "whatsapp"
    supports_batch = False

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        phone_number_id: str,
        token: str,
        api_version: str = "v21.0",
        timeout: float = 30.0,
    ) -> None:
        self.session = session
        self.url = f"{base_url.rstrip('/')}/{api_version}/{phone_number_id}/messages"
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def body(self, message: Message) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": re.sub(r"\D", "", message.to),
            "biz_opaque_callback_data": f"{message.tenant}:{message.message_id}",
        }
        template = message.whatsapp_template
        if template is None:
            body["type"] = "text"
            body["text"] = {"preview_url": False, "body": message.text}
            return body
        components = []
        if template.params:
            parameters = [{"type": "text", "text": p} for p in template.params]
            components.append({"type": "body", "parameters": parameters})
        body["type"] = "template"
        body["template"] = {
            "name": template.name,
            "language": {"code": template.language},
            "components": components,
        }
        return body

    async def send(self, message: Message) -> Accepted:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with self.session.post(
                self.url, json=self.body(message), headers=headers, timeout=self.timeout
            ) as resp:
                doc = await response_json(resp)
                if resp.status == 200:
                    messages: Any = doc.get("messages") or [{}]
                    return Accepted(self.name, str(messages[0].get("id", "")))
                raise classify(resp.status, doc, resp.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(self.name, exc) from exc


def classify(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> DeliveryError:
    """Map a WhatsApp Cloud API error to Herald's error classes, keyed on `error.code`."""
    name = WhatsAppCloud.name
    error = body.get("error")
    error = error if isinstance(error, Mapping) else {}
    try:
        code: int | None = int(error["code"])
    except (KeyError, TypeError, ValueError):
        code = None
    key = str(code if code is not None else status)
    detail = f"{key}: {str(error.get('message') or '')[:300]}"
    if code in RATE_LIMIT_CODES:
        return RateLimited(detail, provider=name, code=key, retry_after=retry_after(headers))
    if code in TRANSIENT_CODES:
        return TransientError(detail, provider=name, code=key, retry_after=retry_after(headers))
    if code in AUTH_CODES:
        return ProviderAuthError(detail, provider=name, code=key)
    if code in UNREACHABLE:
        return RecipientUnreachable(f"{key}: {UNREACHABLE[code]}", provider=name, code=key)
    if code == INVALID_PARAMETER:
        return InvalidData(detail, provider=name, code=key)
    if status == 429:
        return RateLimited(detail, provider=name, code=key, retry_after=retry_after(headers))
    if status >= 500:
        return TransientError(detail, provider=name, code=key, retry_after=retry_after(headers))
    if code is None and status in (401, 403):
        return ProviderAuthError(detail, provider=name, code=key)
    return InvalidData(detail, provider=name, code=key)
