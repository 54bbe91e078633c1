"""Idempotency of notification requests: what the same messageId seen again means.

A messageId (or the Idempotency-Key it is derived from) is reserved only by a
request the pipeline accepted: one that produced dispatches or a final decision
such as BLOCKED by consent. A request dead-lettered as invalid reserves nothing,
so its corrected re-send with the same id is processed. The reservation keeps a
fingerprint of the body: the same id with the same body is the original
request again (answered as before, never sent twice); with another body it is a
conflict, refused at the HTTP door (409) or dead-lettered by ingest, and the
original message's state is left as it was.

Both the door and ingest decide with `decide`; the door reads its own worker's
copy of the idempotency table, so with several workers a reservation held by
another worker's partition is caught by ingest instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import orjson

__all__ = [
    "CONFLICT_REASON",
    "FINGERPRINT_RE",
    "VOLATILE",
    "Seen",
    "decide",
    "fingerprint",
    "reservation",
]

# Fields that do not make two requests different: the id is the reservation's
# own key, and a tenant never shares it (the key starts with the tenant).
VOLATILE = frozenset({"messageId", "tenant"})
CONFLICT_REASON = "idempotency-conflict"
FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")  # what `fingerprint` gives: SHA-256, hex


class Seen(StrEnum):
    """What a request is, given the reservation of its messageId."""

    NEW = "new"  # no reservation (or expired): process it
    REPLAY = "replay"  # the very record that reserved it, redelivered: process it again
    DUPLICATE = "duplicate"  # the same body again: the original answer, nothing sent
    CONFLICT = "conflict"  # another body under the same id: refused


def fingerprint(request: Mapping[str, Any]) -> str:
    """A digest of the body: the record without volatile fields, absent and empty values.

    An HTTP body (its model's dump) and the Avro record it becomes differ only in
    defaults (null, {}), so both give the same fingerprint.
    """
    body = _canonical({k: v for k, v in request.items() if k not in VOLATILE})
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def decide(
    seen: Mapping[str, Any] | None,
    *,
    body: str,
    now: float,
    ttl_s: float,
    position: list[int] | None = None,
) -> Seen:
    """The meaning of a request with fingerprint `body`, given its id's reservation `seen`.

    `position` ([partition, offset]) is the record's in ingest; the door has none.
    A reservation written before fingerprints were kept counts as the same body.
    """
    if not seen or now - float(seen.get("at", 0)) > ttl_s:
        return Seen.NEW
    if position is not None and list(seen.get("position") or ()) == list(position):
        return Seen.REPLAY
    kept = seen.get("fingerprint")
    if kept is None or kept == body:
        return Seen.DUPLICATE
    return Seen.CONFLICT


def reservation(position: list[int], body: str, now: float) -> dict[str, Any]:
    """The idempotency table's value for an accepted request."""
    return {"position": list(position), "at": now, "fingerprint": body}


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = {str(k): _canonical(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if not _empty(v)}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, dict | list) and not value)
