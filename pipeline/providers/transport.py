"""The one way the HTTP adapters call their provider: timeouts, transport failures, bodies.

`HttpCall.post` makes the request under the adapter's timeout and reads the
whole answer into an `Answer` (status, headers, the body as a JSON object
and as text), so an adapter only decides what the answer means. A timeout or
a connection failure becomes `ProviderTimeout`, always worth retrying; the
body of an answer that is not JSON (a proxy's HTML page) reads as `{}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from pipeline.exceptions import ProviderTimeout

__all__ = ["Answer", "HttpCall", "retry_after", "transport_error"]


@dataclass(frozen=True)
class Answer:
    """A provider's whole answer, read before the connection went back to the pool."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        """The body's JSON object, or {} when the body is not one."""
        try:
            doc = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return {}
        return doc if isinstance(doc, dict) else {}

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def retry_after(self) -> float | None:
        """The answer's `Retry-After`, in seconds."""
        return retry_after(self.headers)


class HttpCall:
    """POSTs to one provider through the shared session, under one timeout."""

    def __init__(self, session: aiohttp.ClientSession, provider: str, timeout: float) -> None:
        self.session = session
        self.provider = provider
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def post(
        self,
        url: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """The provider's answer, whatever its status; ProviderTimeout when there is none."""
        try:
            async with self.session.post(
                url, json=json, data=data, headers=headers, timeout=self.timeout
            ) as resp:
                return Answer(resp.status, resp.headers, await resp.read())
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(self.provider, exc) from exc


def transport_error(provider: str, exc: BaseException) -> ProviderTimeout:
    """A timeout or connection failure: always worth retrying (the timeout policy). In
    doubt unless the connection was never made: a request sent and not answered (a
    timeout, a connection dropped mid-call) may have been taken by the provider."""
    never_connected = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(
            "timeout", provider=provider, code="timeout", in_doubt=not never_connected
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ProviderTimeout(
            f"connection error: {type(exc).__name__}", provider=provider, code="network",
            in_doubt=not never_connected,
        )  # fmt: skip
    return ProviderTimeout(f"{type(exc).__name__}: {exc}", provider=provider, code="network")


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP-date), else None."""
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
