"""Channel limits: rendered content a provider would refuse is refused before it is sent.

WhatsApp takes a text message body of at most 4,096 characters; FCM takes a message
whose `notification` and `data`, as JSON, are at most 4,096 bytes, and refuses a data
key that is reserved (`from`, `message_type`, anything starting `google` or `gcm`). A
message over these would be accepted, travel the pipeline and come back as a provider
error (retried, then failed); instead it is a validation error where the request is rendered
(`pipeline.domain.planning.render_dispatch`): HTTP 422 at the door, a dead letter with
reason `invalid` and a DLQ status from Kafka. The size limits of the topics themselves
are `pipeline.domain.limits`; this module is about what the channel's provider takes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from pipeline.domain.templates import Rendered
from pipeline.exceptions import ContentOverLimit

__all__ = [
    "PUSH_MAX_PAYLOAD_BYTES", "WHATSAPP_MAX_TEXT_CHARS", "check_channel_content",
    "is_data_key_allowed", "push_payload", "push_payload_bytes",
]  # fmt: skip

WHATSAPP_MAX_TEXT_CHARS = 4096  # Cloud API: text.body, in characters
PUSH_MAX_PAYLOAD_BYTES = 4096  # FCM: notification + data, in bytes
_RESERVED_KEYS = frozenset({"from", "message_type"})
_RESERVED_PREFIXES = ("google", "gcm")


def is_data_key_allowed(key: str) -> bool:
    """Whether FCM v1 takes `key` in `message.data` (not a reserved word or prefix)."""
    return key not in _RESERVED_KEYS and not key.lower().startswith(_RESERVED_PREFIXES)


def push_payload(rendered: Rendered, *, message_id: str, tenant: str) -> dict[str, Any]:
    """The part of an FCM message FCM counts: the notification (title, body) and the data
    (the template's push data, and the message id and tenant every push carries)."""
    notification = {"body": rendered.text}
    if rendered.subject:
        notification = {"title": rendered.subject, **notification}
    data = {**(rendered.data or {}), "messageId": message_id, "tenant": tenant}
    return {"notification": notification, "data": data}


def push_payload_bytes(payload: Mapping[str, Any]) -> int:
    """`payload` as compact UTF-8 JSON, in bytes (as `pipeline.providers.fcm` sends it)."""
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


def check_channel_content(rendered: Rendered, *, message_id: str, tenant: str) -> None:
    """Raise ContentOverLimit if `rendered` is more than its channel's provider takes."""
    if rendered.channel == "whatsapp":
        chars = len(rendered.text)
        if chars > WHATSAPP_MAX_TEXT_CHARS:
            _over("whatsapp", f"renders to a WhatsApp text of {chars} characters; "
                  f"WhatsApp takes at most {WHATSAPP_MAX_TEXT_CHARS}")  # fmt: skip
    if rendered.channel == "push":
        reserved = sorted(k for k in rendered.data or {} if not is_data_key_allowed(k))
        if reserved:
            _over("push", f"has push data keys FCM reserves: {', '.join(reserved)}")
        size = push_payload_bytes(push_payload(rendered, message_id=message_id, tenant=tenant))
        if size > PUSH_MAX_PAYLOAD_BYTES:
            _over("push", f"renders to a push payload (title, body and data) of {size} bytes; "
                  f"FCM takes at most {PUSH_MAX_PAYLOAD_BYTES}")  # fmt: skip


def _over(channel: str, message: str) -> NoReturn:
    raise ContentOverLimit(
        f"the {channel} message {message}", [{"field": "data", "message": message}]
    )
