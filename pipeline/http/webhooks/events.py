"""What every webhook receiver shares: the ProviderEvent record and the body readers.

A receiver turns one provider's callback into ProviderEvent records
(schemas/ProviderEvent.avsc); building them here keeps the field names, the
reason's length limit and the time format the same for every provider. A body
that is not the provider's shape is a `ValidationError`, never a crash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

from pipeline.clock import format_time, now
from pipeline.exceptions import AuthError, StaleSignature, ValidationError

__all__ = [
    "MAX_REASON",
    "Record",
    "epoch_time",
    "event_record",
    "form_body",
    "fresh",
    "join_key",
    "json_body",
    "optional",
]

Record = dict[str, Any]

MAX_REASON = 500  # characters of a provider's reason kept in the record


def event_record(
    *,
    provider: str,
    channel: str,
    provider_message_id: str,
    event_id: str,
    tenant: str | None,
    message_id: str | None,
    event: str,
    reason: str | None,
    at: str,
) -> Record:
    """One ProviderEvent record; `event_id` is the deduplication key of replays."""
    return {
        "provider": provider,
        "channel": channel,
        "providerMessageId": provider_message_id,
        "eventId": event_id,
        "tenant": tenant,
        "messageId": message_id,
        "event": event,
        "reason": reason[:MAX_REASON] if reason else None,
        "at": at,
    }


def fresh(signed_at: Any, now: float, window_s: float, what: str) -> None:
    """AuthError unless `signed_at` (signed epoch seconds) is within `window_s` of `now`.

    Either way: an old signature is a replay, and one far ahead would outlive the
    window. A provider that signs no timestamp cannot be held to a window (see the
    README: its replays are caught by the event id and the attempt match instead).
    """
    try:
        at = int(str(signed_at).strip())
    except (TypeError, ValueError):
        raise AuthError(f"{what} is not epoch seconds") from None
    if abs(now - at) > window_s:
        raise StaleSignature(f"{what} is outside the {window_s:.0f} s replay window")


def json_body(body: bytes) -> Any:
    """The body as JSON; ValidationError when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"body is not JSON: {exc}") from exc


def form_body(body: bytes) -> list[tuple[str, str]]:
    """The body as form fields, in order; ValidationError when it is not a form."""
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationError(f"body is not a form: {exc}") from exc


def join_key(value: Any) -> tuple[str | None, str | None]:
    """`tenant:messageId` back into its parts (None, None when absent or malformed)."""
    tenant, sep, message_id = str(value or "").partition(":")
    if not sep or not tenant or not message_id:
        return None, None
    return tenant, message_id


def epoch_time(value: Any) -> str:
    """Epoch seconds as Herald's time format; now when the provider sent none usable."""
    try:
        return format_time(datetime.fromtimestamp(int(value), UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return now()


def optional(value: Any) -> str | None:
    """The value as text, None for absent or empty."""
    return None if value is None or value == "" else str(value)
