"""Tenants and record keys: who a record belongs to, checked before anything is keyed by it.

Every user-centric key is `tenant:userId` and every message key `tenant:messageId`
(`pipeline.domain.ids`). A userId or messageId may contain `:`, so the keys are
unambiguous only while a tenant never does: `acme:x` with user `u` would be
`acme` with user `x:u`. One rule for a tenant therefore serves the JWT claim (the
HTTP door), the request's own check and every stage reading a topic that clients
produce to. A Kafka record's key must also be the key the catalog derives from
the record: the key decides the partition, and the partition which table
entries (idempotency, preferences) a stage sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from pipeline.exceptions import ValidationError

__all__ = [
    "ID_RE",
    "INVALID_TENANT",
    "INVALID_USER",
    "KEY_MISMATCH",
    "TENANT_RE",
    "Refusal",
    "check_keyed_record",
    "check_user_key",
    "record_key",
    "valid_tenant",
    "valid_user_id",
]

ID_RE = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")  # userId, messageId, templateId
TENANT_RE = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")  # ID_RE without ':'

# Dead-letter reasons of the checks below.
INVALID_TENANT = "invalid-tenant"
INVALID_USER = "invalid"
KEY_MISMATCH = "key-mismatch"


@dataclass(frozen=True)
class Refusal:
    """Why a record is not processed: its dead-letter reason and a message (no values)."""

    reason: str
    error: str


def valid_tenant(value: object) -> TypeGuard[str]:
    """1-128 letters, digits and `._@-`: never `:`, the separator of every key."""
    return isinstance(value, str) and bool(TENANT_RE.match(value))


def valid_user_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(ID_RE.match(value))


def record_key(rule: str, record: Mapping[str, Any]) -> str:
    """The record's key by a catalog key rule (`tenant:userId`, `flightKey`, ...).

    A NotificationRequest carries its userId in `recipient`.
    """
    parts = []
    for name in rule.split(":"):
        value = record.get(name)
        if value is None and name == "userId":
            value = (record.get("recipient") or {}).get("userId")
        if value is None:
            raise ValidationError(f"the record has no {name!r} for the key {rule}")
        parts.append(str(value))
    return ":".join(parts)


def check_keyed_record(rule: str, record: Mapping[str, Any], key: Any) -> Refusal | None:
    """None when the record's tenant and user are valid and `key` is the one `rule` derives.

    The errors name the field, never its value (they reach logs and dashboards).
    """
    fields = rule.split(":")
    if "tenant" in fields and not valid_tenant(record.get("tenant")):
        return Refusal(INVALID_TENANT, "tenant: 1-128 letters, digits and ._@- (no ':')")
    if "userId" in fields:
        user = record.get("userId", (record.get("recipient") or {}).get("userId"))
        if not valid_user_id(user):
            return Refusal(INVALID_USER, "userId: 1-128 letters, digits and ._:@-")
    try:
        expected = record_key(rule, record)
    except ValidationError as exc:
        return Refusal(KEY_MISMATCH, str(exc))
    actual = key.decode(errors="replace") if isinstance(key, bytes) else key
    if actual != expected:
        return Refusal(KEY_MISMATCH, f"the record key is not {rule} of the record")
    return None


def check_user_key(key: Any) -> Refusal | None:
    """For a record that is only a key (a tombstone): a valid `tenant:userId`."""
    text = key.decode(errors="replace") if isinstance(key, bytes) else key
    tenant, sep, user = (text or "").partition(":")
    if not sep or not valid_tenant(tenant):
        return Refusal(INVALID_TENANT, "the key's tenant: 1-128 letters, digits and ._@-")
    if not valid_user_id(user):
        return Refusal(INVALID_USER, "the key's userId: 1-128 letters, digits and ._:@-")
    return None
