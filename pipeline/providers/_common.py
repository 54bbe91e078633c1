"""Helpers the HTTP adapters share: retry hints and transport failures."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from pipeline.exceptions import ProviderTimeout, TransientError


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


def transport_error(provider: str, exc: BaseException) -> TransientError:
    """A timeout or connection failure: always worth retrying (the timeout policy)."""
    if isinstance(exc, TimeoutError):
        return ProviderTimeout("timeout", provider=provider, code="timeout")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ProviderTimeout(
            f"connection error: {type(exc).__name__}", provider=provider, code="network"
        )
    return ProviderTimeout(f"{type(exc).__name__}: {exc}", provider=provider, code="network")


async def response_json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """The response's JSON object, or {} when the body is not one (a proxy's HTML page)."""
    try:
        doc = await resp.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}
