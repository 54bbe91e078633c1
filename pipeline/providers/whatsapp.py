"""WhatsApp Business Cloud API, the primary WhatsApp provider.

`POST {base}/{version}/{phone_number_id}/messages`, `Authorization: Bearer`,
JSON with `messaging_product: "whatsapp"`, `to` (digits, no `+`) and either a
`template` (when the message names one: required outside the 24 h window) or
`text`. `biz_opaque_callback_data` (`tenant:messageId`) is echoed in every
status webhook: the join key. 200 carries `messages[0].id` (`wamid...`).

Errors are `{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}`
and are keyed on `code` (ERRORS; the HTTP status varies, so it decides only
for a code the table does not list).
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
from pipeline.providers.base import Accepted, Message, SingleSendProvider
from pipeline.providers.errors import HTTP_STATUSES, ErrorTable
from pipeline.providers.transport import HttpCall, retry_after

__all__ = ["ERRORS", "WhatsAppCloud", "classify"]

ERRORS = ErrorTable(
    "whatsapp-cloud",
    {
        "130429": RateLimited,  # throughput
        "131056": RateLimited,  # pair rate limit (one recipient, too fast)
        "4": RateLimited,  # app limit
        "80007": RateLimited,  # account limit
        "131000": TransientError,  # generic
        "133004": TransientError,  # service unavailable
        "0": ProviderAuthError,  # token invalid
        "190": ProviderAuthError,  # token expired
        "10": ProviderAuthError,  # no permission
        "131026": RecipientUnreachable,
        "131047": RecipientUnreachable,
        "131049": RecipientUnreachable,
        "100": InvalidData,  # invalid parameter, whatever the HTTP status
        **HTTP_STATUSES,
    },
    notes={
        "131026": "undeliverable: not a WhatsApp user, blocked us, or an old app",
        "131047": "more than 24 h since the user last wrote: only a template can be sent now",
        "131049": "marketing message cap reached for this user: not again on this channel "
        "for ~24 h",
    },
)


class WhatsAppCloud(SingleSendProvider):
    name = "whatsapp-cloud"
    channel = "whatsapp"

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
        self.http = HttpCall(session, self.name, timeout)
        self.url = f"{base_url.rstrip('/')}/{api_version}/{phone_number_id}/messages"
        self.token = token

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
        answer = await self.http.post(self.url, json=self.body(message), headers=headers)
        doc = answer.json
        if answer.status == 200:
            messages: Any = doc.get("messages") or [{}]
            return Accepted(self.name, str(messages[0].get("id", "")))
        raise classify(answer.status, doc, answer.headers)


def classify(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> DeliveryError:
    """Map a WhatsApp Cloud API error to Herald's error classes, keyed on `error.code`."""
    error = body.get("error")
    error = error if isinstance(error, Mapping) else {}
    try:
        code = str(int(error["code"]))
    except (KeyError, TypeError, ValueError):
        code = ""
    message = str(error.get("message") or "")
    return ERRORS.http_error(status, code, message, retry_after=retry_after(headers))
