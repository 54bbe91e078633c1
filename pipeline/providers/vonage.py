"""Vonage SMS API, the secondary SMS provider.

`POST {base}/sms/json`, form-encoded `api_key`, `api_secret`, `from`, `to`
(international format without `+`), `text`, `client-ref` (`tenant:messageId`,
echoed in every delivery receipt: the join key) and `callback` (where the
delivery receipts go, overriding the account's default).

The answer is HTTP 200 whatever happened; each part's `status` tells:
"0" accepted (`message-id` is the provider id), "1" throttled and "5" internal
error (retry), "2"/"3"/"6" invalid request, "4" bad credentials, "7" number
barred. A few more documented statuses are mapped too (ERRORS). An HTTP
error status (429, 401/403, 5xx) is classified before the body is read.
"""

from __future__ import annotations

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
from pipeline.providers.errors import HTTP_STATUSES, ErrorTable, http_keys
from pipeline.providers.transport import HttpCall, retry_after

__all__ = ["ERRORS", "Vonage", "classify"]

# Keyed on each part's `status`; what is not listed is an invalid request ("2", "3", "6").
ERRORS = ErrorTable(
    "vonage",
    {
        "1": RateLimited,  # throttled
        "5": TransientError,  # internal error
        "10": TransientError,  # too many binds
        "4": ProviderAuthError,  # bad credentials
        "8": ProviderAuthError,  # account barred
        "9": ProviderAuthError,  # out of credit
        "11": ProviderAuthError,  # HTTP not enabled for the account
        "14": ProviderAuthError,  # invalid signature
        "32": ProviderAuthError,  # signature and secret both sent
        "7": RecipientUnreachable,  # number barred
        "29": RecipientUnreachable,  # not whitelisted on a demo account
        "33": RecipientUnreachable,  # number de-activated
        **HTTP_STATUSES,
    },
)


class Vonage(SingleSendProvider):
    name = "vonage"
    channel = "sms"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        api_secret: str,
        from_: str,
        public_url: str,
        timeout: float = 30.0,
    ) -> None:
        self.http = HttpCall(session, self.name, timeout)
        self.url = base_url.rstrip("/") + "/sms/json"
        self.api_key = api_key
        self.api_secret = api_secret
        self.sender = from_.lstrip("+")
        self.callback = public_url.rstrip("/") + "/webhooks/vonage"

    def form(self, message: Message) -> dict[str, str]:
        form = {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "from": self.sender,
            "to": message.to.lstrip("+"),
            "text": message.text,
            "client-ref": f"{message.tenant}:{message.message_id}",
            "callback": self.callback,
            "status-report-req": "1",
        }
        if not message.text.isascii():
            form["type"] = "unicode"
        return form

    async def send(self, message: Message) -> Accepted:
        answer = await self.http.post(self.url, data=self.form(message))
        body = answer.json
        error = classify(answer.status, body, answer.headers)
        if error is not None:
            raise error
        parts: Any = body["messages"]  # classify checked the shape
        return Accepted(self.name, str(parts[0].get("message-id", "")))


def classify(
    http_status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> DeliveryError | None:
    """None when every part was accepted, else the error, keyed on Vonage's `status`."""
    hint = retry_after(headers)
    if any(key in ERRORS.classes for key in http_keys(http_status)):  # 429, 401/403, 5xx
        return ERRORS.http_error(http_status, "", "HTTP error", retry_after=hint)
    parts = body.get("messages")
    if http_status != 200 or not isinstance(parts, list) or not parts:
        # An error without parts: {"status": "4", "error-text": "Bad Credentials"}.
        if "status" in body and str(body["status"]) != "0":
            return ERRORS.error(
                str(body["status"]), str(body.get("error-text", "")), retry_after=hint
            )
        return InvalidData(
            f"unexpected answer (HTTP {http_status})", provider=Vonage.name, code=str(http_status)
        )
    for part in parts:
        if not isinstance(part, Mapping):
            return InvalidData("unexpected answer: a part is not an object", provider=Vonage.name)
        status = str(part.get("status", ""))
        if status != "0":
            return ERRORS.error(status, str(part.get("error-text", "")), retry_after=hint)
    return None
