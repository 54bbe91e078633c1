"""Vonage SMS API, the secondary SMS provider.

`POST {base}/sms/json`, form-encoded `api_key`, `api_secret`, `from`, `to`
(international format without `+`), `text`, `client-ref` (`tenant:messageId`,
echoed in every delivery receipt: the join key) and `callback` (where the
delivery receipts go, overriding the account's default).

The answer is HTTP 200 whatever happened; each part's `status` tells:
"0" accepted (`message-id` is the provider id), "1" throttled and "5" internal
error (retry), "2"/"3"/"6" invalid request, "4" bad credentials, "7" number
barred. A few more documented statuses are mapped too (see `classify`).
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
from pipeline.providers._common import response_json, retry_after, transport_error
from pipeline.providers.base import Accepted, Message

# Throttled (1), internal error (5), too many binds (10).
TRANSIENT_STATUSES = frozenset({"1", "5", "10"})
# Bad credentials (4), account barred (8), out of credit (9), HTTP not enabled (11),
# invalid signature (14), signature and secret both sent (32).
AUTH_STATUSES = frozenset({"4", "8", "9", "11", "14", "32"})
# Number barred (7), destination not whitelisted on a demo account (29), de-activated (33).
UNREACHABLE_STATUSES = frozenset({"7", "29", "33"})


class Vonage:
    name = "vonage"
    channel = "sms"
    supports_batch = False

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
        self.session = session
        self.url = base_url.rstrip("/") + "/sms/json"
        self.api_key = api_key
        self.api_secret = api_secret
        self.sender = from_.lstrip("+")
        self.callback = public_url.rstrip("/") + "/webhooks/vonage"
        self.timeout = aiohttp.ClientTimeout(total=timeout)

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
        try:
            async with self.session.post(
                self.url, data=self.form(message), timeout=self.timeout
            ) as resp:
                body = await response_json(resp)
                error = classify(resp.status, body, resp.headers)
                if error is not None:
                    raise error
                parts: Any = body["messages"]  # classify checked the shape
                return Accepted(self.name, str(parts[0].get("message-id", "")))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(self.name, exc) from exc


def classify(
    http_status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> DeliveryError | None:
    """None when every part was accepted, else the error, keyed on Vonage's `status`."""
    name = Vonage.name
    if http_status == 429:
        return RateLimited(
            f"HTTP {http_status}", provider=name, code=str(http_status),
            retry_after=retry_after(headers),
        )  # fmt: skip
    if http_status >= 500:
        return TransientError(
            f"HTTP {http_status}", provider=name, code=str(http_status),
            retry_after=retry_after(headers),
        )  # fmt: skip
    if http_status in (401, 403):
        return ProviderAuthError(f"HTTP {http_status}", provider=name, code=str(http_status))
    parts = body.get("messages")
    if http_status != 200 or not isinstance(parts, list) or not parts:
        # An error without parts: {"status": "4", "error-text": "Bad Credentials"}.
        if "status" in body and str(body["status"]) != "0":
            return _by_status(str(body["status"]), str(body.get("error-text", "")), headers)
        return InvalidData(
            f"unexpected answer (HTTP {http_status})", provider=name, code=str(http_status)
        )
    for part in parts:
        if not isinstance(part, Mapping):
            return InvalidData("unexpected answer: a part is not an object", provider=name)
        status = str(part.get("status", ""))
        if status != "0":
            return _by_status(status, str(part.get("error-text", "")), headers)
    return None


def _by_status(status: str, text: str, headers: Mapping[str, str] | None) -> DeliveryError:
    name = Vonage.name
    detail = f"status {status}: {text[:300]}"
    if status == "1":  # throttled
        return RateLimited(detail, provider=name, code=status, retry_after=retry_after(headers))
    if status in TRANSIENT_STATUSES:
        return TransientError(detail, provider=name, code=status, retry_after=retry_after(headers))
    if status in AUTH_STATUSES:
        return ProviderAuthError(detail, provider=name, code=status)
    if status in UNREACHABLE_STATUSES:
        return RecipientUnreachable(detail, provider=name, code=status)
    return InvalidData(detail, provider=name, code=status)
