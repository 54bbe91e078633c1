"""SendGrid v3 Mail Send (`POST /v3/mail/send`), the primary email provider.

202 Accepted carries the id in `X-Message-Id`. Errors come as
`{"errors": [{"message", "field"}]}`; 429 carries `X-RateLimit-Reset` (epoch
seconds), which is the retry hint since `Retry-After` is not documented.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from ..exceptions import (
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    TransientError,
)
from .base import Accepted, Message


class SendGrid:
    name = "sendgrid"
    channel = "email"

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
        self.session = session
        self.url = base_url.rstrip("/") + "/v3/mail/send"
        self.api_key = api_key
        self.sender = {"email": from_email, **({"name": from_name} if from_name else {})}
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def body(self, message: Message) -> dict[str, Any]:
        content = [{"type": "text/plain", "value": message.text}]
        if message.html:
            content.append({"type": "text/html", "value": message.html})
        personalization: dict[str, Any] = {
            "to": [{"email": message.to}],
            # custom_args come back in every event webhook: the join key.
            "custom_args": {"messageId": message.message_id, "tenant": message.tenant},
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

    async def send(self, message: Message) -> Accepted:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        try:
            async with self.session.post(
                self.url, json=self.body(message), headers=headers, timeout=self.timeout
            ) as resp:
                if resp.status == 202:
                    return Accepted(self.name, resp.headers.get("X-Message-Id", ""))
                detail = await _error_text(resp)
                raise classify(resp.status, detail, resp.headers)
        except TimeoutError as exc:
            raise ProviderTimeout("timeout", provider=self.name, code="timeout") from exc
        except aiohttp.ClientError as exc:
            raise ProviderTimeout(
                f"connection error: {type(exc).__name__}", provider=self.name, code="network"
            ) from exc


def classify(status: int, detail: str, headers: Any) -> Exception:
    """Map a non-202 SendGrid answer to Herald's error classes."""
    code = str(status)
    if status == 429:
        return RateLimited(
            f"rate limited: {detail}",
            provider=SendGrid.name,
            code=code,
            retry_after=_reset_delay(headers.get("X-RateLimit-Reset")),
        )
    if status >= 500:
        return TransientError(
            f"provider error {status}: {detail}", provider=SendGrid.name, code=code
        )
    if status in (401, 403):
        return ProviderAuthError(f"{status}: {detail}", provider=SendGrid.name, code=code)
    return InvalidData(f"{status}: {detail}", provider=SendGrid.name, code=code)


def _reset_delay(reset: str | None) -> float | None:
    try:
        return max(0.0, float(reset) - time.time()) if reset else None
    except ValueError:
        return None


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    try:
        doc = await resp.json(content_type=None)
        return "; ".join(e.get("message", "") for e in doc.get("errors", []))[:300]
    except Exception:
        return (await resp.text())[:300]
