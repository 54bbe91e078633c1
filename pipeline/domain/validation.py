"""Validation of notification requests, shared by the HTTP ingress and the ingest stage.

`check_request` checks the content of a NotificationRequest record however it
arrived: over HTTP (after the body matched its model, `pipeline.http.models`,
which reuses the patterns here) or straight onto Kafka. It raises
`ValidationError` with one entry per bad field, which the HTTP layer turns into
problem+json and the ingest stage into a dead letter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from pipeline.clock import parse_time
from pipeline.domain.formatting import valid_time_zone
from pipeline.domain.routing import CHAINS, CHANNELS, CONTACT_FIELD, contact_point
from pipeline.domain.templates import Template, TemplateCatalog
from pipeline.domain.tenancy import ID_RE, valid_tenant
from pipeline.exceptions import ValidationError

__all__ = [
    "E164_RE",
    "EMAIL_RE",
    "ID_RE",
    "MODES",
    "PRIORITIES",
    "UNSAFE_TEXT_RE",
    "check_contacts",
    "check_request",
    "is_email",
]

PRIORITIES = ("high", "standard", "marketing")
MODES = ("fallback", "all")
# The shape the API description publishes; `is_email` is the rule (email-validator).
EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+\.[^@\s<>()\[\],;:\"\\]+$")
# NUL and the bidirectional overrides and isolates (Trojan Source): never in a message.
UNSAFE_TEXT_RE = re.compile("[\x00\u202a-\u202e\u2066-\u2069]")
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")


def is_email(value: object) -> bool:
    """A bare address (`ana@example.com`): no display name, angle brackets or quoted part.

    email-validator's syntax rules, without DNS; `.test` domains are allowed (the
    simulator's conventions, `bounce.test`, live there).
    """
    if not isinstance(value, str) or not EMAIL_RE.match(value):
        return False
    try:
        validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        return False
    return True


def check_contacts(fields: Mapping[str, Any], bad: Any, prefix: str) -> None:
    """The contact points and time zone of a recipient or a profile, each reported as
    `bad(prefix + field, message)`: one rule for both, so a profile holds only what a
    request could have carried."""
    email = fields.get("email")
    if email is not None and not is_email(email):
        bad(f"{prefix}email", "not an email address (a bare address: no name, no <>)")
    for key in ("phone", "whatsapp"):
        value = fields.get(key)
        if value is not None and not (isinstance(value, str) and E164_RE.match(value)):
            bad(f"{prefix}{key}", "not an E.164 phone number (+ and 7 to 15 digits)")
    zone = fields.get("timezone")
    if zone not in (None, "") and not valid_time_zone(zone):
        bad(f"{prefix}timezone", "not an IANA time zone, e.g. Europe/Madrid")
    tokens = fields.get("pushTokens")
    if tokens is not None and not (
        isinstance(tokens, list) and all(isinstance(t, str) and t for t in tokens)
    ):
        bad(f"{prefix}pushTokens", "must be a list of non-empty strings")


def check_request(
    record: Mapping[str, Any], templates: TemplateCatalog, *, now: datetime | None = None
) -> Template:
    """Check a NotificationRequest's content; return its template.

    `now` decides whether `sendAt` is in the future (refused until scheduling exists).
    """
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    message_id = record.get("messageId")
    if message_id is not None and not (isinstance(message_id, str) and ID_RE.match(message_id)):
        bad("messageId", "1-128 characters of letters, digits and ._:@-")
    tenant = record.get("tenant")
    if not valid_tenant(tenant):
        bad("tenant", "required, 1-128 letters, digits and ._@- only")
    recipient = record.get("recipient") or {}
    user_id = recipient.get("userId")
    if not (isinstance(user_id, str) and ID_RE.match(user_id)):
        bad("recipient.userId", "required, 1-128 characters of letters, digits and ._:@-")
    check_contacts(recipient, bad, "recipient.")
    if record.get("priority") not in PRIORITIES:
        bad("priority", f"one of {', '.join(PRIORITIES)}")
    channels = record.get("channels")
    if channels is not None:
        if not isinstance(channels, list) or not channels:
            bad("channels", "a non-empty list")
        elif any(c not in CHANNELS for c in channels) or len(set(channels)) != len(channels):
            bad("channels", f"distinct values of {', '.join(CHANNELS)}")
    if record.get("mode") not in (None, *MODES):
        bad("mode", f"one of {', '.join(MODES)}")
    send_at = record.get("sendAt")
    if send_at is not None:
        try:
            if parse_time(str(send_at)) > (now or datetime.now(UTC)):
                bad("sendAt", "scheduled sends are not supported yet: omit sendAt, or a past time")
        except ValueError:
            bad("sendAt", "an RFC 3339 time with an offset, e.g. 2026-12-01T09:00:00Z")
    webhook = record.get("webhookUrl")
    if webhook is not None:
        try:
            parts = urlsplit(str(webhook))
            valid = parts.scheme in ("https", "http") and bool(parts.hostname)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            valid = False
        if not valid:
            bad("webhookUrl", "an absolute http(s) URL")
    if not any(recipient.get(k) for k in ("email", "phone", "whatsapp", "pushTokens")):
        bad("recipient", "needs at least one contact point: email, phone, whatsapp or pushTokens")
    else:
        _check_reachable(record, recipient, bad)
    for name in ("data", "metadata"):
        values = record.get(name) or {}
        for key, value in values.items() if isinstance(values, Mapping) else ():
            if UNSAFE_TEXT_RE.search(str(key)) or (
                isinstance(value, str) and UNSAFE_TEXT_RE.search(value)
            ):
                bad(f"{name}.{key}", "contains NUL or a bidirectional control (U+202A-E, U+2066-9)")
    template_id = record.get("template")
    if not isinstance(template_id, str) or not template_id:
        bad("template", "required")
    if errors:
        raise ValidationError("invalid notification request", errors)
    tenant = record.get("tenant")
    return templates.check(
        str(template_id), record.get("data") or {}, tenant if isinstance(tenant, str) else ""
    )


def _check_reachable(record: Mapping[str, Any], recipient: Mapping[str, Any], bad: Any) -> None:
    """At least one channel it would use has the recipient's contact point (else: no-channel)."""
    named = record.get("channels")
    if named is not None and not (isinstance(named, list) and set(named) <= set(CHANNELS)):
        return  # reported as a bad `channels` already
    priority = record.get("priority")
    order = named or CHAINS.get(priority if isinstance(priority, str) else "", ())
    if not order or any(contact_point(recipient, c) for c in order):
        return
    needs = ", ".join(f"{c} needs recipient.{CONTACT_FIELD[c]}" for c in order)
    if named:
        bad("channels", f"the recipient has no contact point for any of them: {needs}")
    else:
        bad("recipient", f"no contact point for the {priority} channels: {needs}")
