"""The key a repeated send carries, so that whoever can recognise a repeat does.

A crash can leave a provider call in doubt; for `high` and `standard` the send
stage calls again under the same (message, channel, attempt) (`pipeline.domain.
ledger`). None of Herald's providers deduplicates such a call at its API (no
idempotency key: README, Guarantees, "Which providers recognise a repeated
request"), but two of them carry something that lets what stands behind them
fold the repeat, provided the second call carries exactly what the first did:

- email (SMTP, and each SendGrid personalization): the `Message-ID` header. It
  names one message (RFC 5322 3.6.4); a copy under the same id is recognisably
  the same message, and a mailbox may drop it (Gmail is reported to; no
  mailbox provider or relay documents it, so it is a courtesy, not a promise).
- push (FCM): `android.notification.tag` (a notification with the same tag
  replaces the one shown) and the APNs `apns-collapse-id` header (notifications
  with the same collapse id are shown as one). Not `android.collapse_key`: FCM
  keeps at most four collapse keys per device, so a key per message would drop
  queued notifications while a device is offline.

So the key is derived from the dispatch, never random: the resend carries the
first call's key; another attempt or another message has its own. It is a hash,
so it has a bounded length (`apns-collapse-id` takes 64 bytes) and only
characters a Message-ID or a tag accepts, whatever the client chose as its id.
"""

from __future__ import annotations

import hashlib

from pipeline.providers.base import Message

__all__ = ["PREFIX", "message_id_header", "repeat_key"]

PREFIX = "herald-"


def repeat_key(message: Message) -> str:
    """`herald-` and 32 hex digits of SHA-256 over tenant, message id, channel, attempt."""
    seed = "\x1f".join((message.tenant, message.message_id, message.channel, str(message.attempt)))
    return PREFIX + hashlib.sha256(seed.encode()).hexdigest()[:32]


def message_id_header(message: Message, domain: str) -> str:
    """The `Message-ID` of this (message, channel, attempt): `<key@domain>`."""
    return f"<{repeat_key(message)}@{domain}>"
