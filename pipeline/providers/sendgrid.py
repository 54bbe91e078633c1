"""SendGrid v3 Mail Send (`POST /v3/mail/send`), the primary email provider.

202 Accepted carries the id in `X-Message-Id`. Errors come as
`{"errors": [{"message", "field"}]}`; 429 carries `X-RateLimit-Reset` (epoch
seconds), which is the retry hint since `Retry-After` is not documented.

`send_batch` is the batch API (`supports_batch`): up to 1000 personalizations in one request.
Each recipient's own rendered subject and body travel in its personalization
(`subject`, and `substitutions` for the shared content's tags), and its
`custom_args` carry the join key every event webhook echoes.

SendGrid has no idempotency key: a repeated request is a second email. Each
personalization carries a `Message-ID` header derived from its send (SendGrid's
reserved headers do not include it), so a resend in doubt is the same message
to the mailbox (`pipeline.providers.repeat`). `custom_args` are only echoed in
events: SendGrid does not deduplicate on them.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from pipeline.exceptions import DeliveryError
from pipeline.providers.base import Accepted, Message, Provider
from pipeline.providers.errors import HTTP_STATUSES, ErrorTable
from pipeline.providers.repeat import message_id_header
from pipeline.providers.transport import Answer, HttpCall

__all__ = ["ERRORS", "MAX_PERSONALIZATIONS", "MAX_SUBSTITUTION_BYTES", "SendGrid", "classify"]

TEXT_TAG, HTML_TAG = "-herald-text-", "-herald-html-"
MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000  # SendGrid's limit per personalization

# SendGrid has no error codes of its own: the HTTP status says it all.
ERRORS = ErrorTable("sendgrid", HTTP_STATUSES)


class SendGrid(Provider):
    name = "sendgrid"
    channel = "email"
    supports_batch = True  # send_batch: personalizations

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        from_email: str,
        from_name: str = "",
        timeout: float = 30.0,
    ) -> None:
        self.http = HttpCall(session, self.name, timeout)
        self.url = base_url.rstrip("/") + "/v3/mail/send"
        self.api_key = api_key
        self.sender = {"email": from_email, **({"name": from_name} if from_name else {})}
        self.domain = from_email.rpartition("@")[2] or "herald.invalid"

    def body(self, message: Message) -> dict[str, Any]:
        content = [{"type": "text/plain", "value": message.text}]
        if message.html:
            content.append({"type": "text/html", "value": message.html})
        personalization: dict[str, Any] = {
            "to": [{"email": message.to}],
            # custom_args come back in every event webhook: the join key.
            "custom_args": {"messageId": message.message_id, "tenant": message.tenant},
            "headers": self._headers(message),
        }
        body: dict[str, Any] = {
            "personalizations": [personalization],
            "from": self.sender,
            "subject": message.subject or "",
            "content": content,
        }
        if message.headers:
            body["headers"] = dict(message.headers)
        return body

    def batchable(self, message: Message) -> bool:
        """May this message share a request (its content fits in substitutions)?"""
        size = len(message.text.encode()) + len((message.html or "").encode())
        return not message.headers and size <= MAX_SUBSTITUTION_BYTES

    def batch_body(self, messages: list[Message]) -> dict[str, Any]:
        """One request for many recipients, each with its own subject and content."""
        if not 0 < len(messages) <= MAX_PERSONALIZATIONS:
            raise ValueError(f"a batch holds 1 to {MAX_PERSONALIZATIONS} messages")
        if len({m.to.lower() for m in messages}) != len(messages):
            raise ValueError("SendGrid rejects a batch with the same address twice")
        html = any(m.html for m in messages)
        content = [{"type": "text/plain", "value": TEXT_TAG}]
        if html:
            content.append({"type": "text/html", "value": HTML_TAG})
        personalizations = []
        for m in messages:
            substitutions = {TEXT_TAG: m.text}
            if html:
                substitutions[HTML_TAG] = m.html or _as_html(m.text)
            personalizations.append(
                {
                    "to": [{"email": m.to}],
                    "subject": m.subject or "",
                    "substitutions": substitutions,
                    "custom_args": {"messageId": m.message_id, "tenant": m.tenant},
                    "headers": self._headers(m),
                }
            )
        return {"personalizations": personalizations, "from": self.sender, "content": content}

    def _headers(self, message: Message) -> dict[str, str]:
        """The personalization's headers: its Message-ID, the same for a resend."""
        return {"Message-ID": message_id_header(message, self.domain)}

    async def send_batch(self, messages: list[Message]) -> Accepted:
        """Send many messages in one request; all are accepted, or the error is raised."""
        return await self._post(self.batch_body(messages))

    async def send(self, message: Message) -> Accepted:
        return await self._post(self.body(message))

    async def _post(self, body: dict[str, Any]) -> Accepted:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        answer = await self.http.post(self.url, json=body, headers=headers)
        if answer.status == 202:
            return Accepted(self.name, answer.headers.get("X-Message-Id", ""))
        raise classify(answer.status, _error_text(answer), answer.headers)


def _as_html(text: str) -> str:
    return "<pre>" + html.escape(text) + "</pre>"


def classify(status: int, detail: str, headers: Mapping[str, str]) -> DeliveryError:
    """Map a non-202 SendGrid answer to Herald's error classes (ERRORS).

    The retry hint of a 429 is `X-RateLimit-Reset` (SendGrid does not document
    Retry-After); every answer carries it, but only a 429 means "wait until then".
    """
    hint = _reset_delay(headers.get("X-RateLimit-Reset")) if status == 429 else None
    return ERRORS.http_error(status, "", detail, retry_after=hint)


def _reset_delay(reset: str | None) -> float | None:
    try:
        return max(0.0, float(reset) - time.time()) if reset else None
    except ValueError:
        return None


def _error_text(answer: Answer) -> str:
    """The messages of SendGrid's `errors`, else the body as text."""
    errors = answer.json.get("errors")
    if not isinstance(errors, list):
        return answer.text
    return "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
