"""User profiles: what a request that names only its user is sent with, and what a PUT stores.

A profile (`herald.users.profiles`, key `tenant:userId`) holds a user's contact points
(email, phone, whatsapp, pushTokens), locale, time zone and attributes. `resolve` fills a
request's recipient from it, field by field: what the request carries wins for that
message, the profile fills what it lacks. The locale order is therefore the request's,
the profile's, then the tenant's default (`pipeline.domain.locales`); the attributes are
the template variable `user` (`pipeline.domain.user_view`).

`check_profile` holds a PUT body to the same rules as a request's recipient
(`pipeline.domain.validation.check_contacts`), plus bounded sizes, so a profile never
stores what a request could not carry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.locales import normalise_locale
from pipeline.domain.routing import CHAINS, contact_point
from pipeline.domain.validation import UNSAFE_TEXT_RE, check_contacts
from pipeline.exceptions import ValidationError

__all__ = [
    "ATTRIBUTE_NAME_RE", "CONTACT_FIELDS", "MAX_ATTRIBUTES", "MAX_ATTRIBUTE_VALUE", "MAX_LOCALE",
    "MAX_PUSH_TOKENS", "MAX_TOKEN_LENGTH", "PROFILE_FIELDS", "Resolved", "check_profile",
    "needs_profile", "profile_record", "public_profile", "resolve",
]  # fmt: skip

CONTACT_FIELDS = ("email", "phone", "whatsapp", "pushTokens")
# What a profile fills in a recipient, where the request has none.
_FILLED = (*CONTACT_FIELDS, "locale", "timezone")
PROFILE_FIELDS = (*_FILLED, "attributes")  # the PUT body, as the contract names it
MAX_PUSH_TOKENS = 10
MAX_TOKEN_LENGTH = 4096
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_VALUE = 1024
MAX_LOCALE = 35  # BCP 47 tags in use are short; RFC 5646 advises at least 35 characters
# An attribute is read in templates as `user.<name>`: an identifier, never `_private`.
ATTRIBUTE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Resolved:
    """A request with its recipient filled from the profile, and what renders it."""

    request: dict[str, Any]
    profile_locale: str | None = None
    user: Mapping[str, str] = field(default_factory=dict)  # the template variable `user`


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def resolve(request: Mapping[str, Any], profile: Mapping[str, Any] | None) -> Resolved:
    """`request` with each recipient field it lacks taken from `profile` (None: as is).

    The recipient keeps its locale as the request gave it only when it gave one; the
    profile's locale fills it otherwise, so a fallback channel rendered later from the
    resolved request picks the same locale (`pick_locale` skips an absent candidate).
    """
    recipient = dict(request.get("recipient") or {})
    if not profile:
        return Resolved({**request, "recipient": recipient})
    for name in _FILLED:
        value = profile.get(name)
        if _empty(recipient.get(name)) and not _empty(value):
            recipient[name] = list(value) if isinstance(value, list) else value
    attributes = profile.get("attributes") or {}
    return Resolved(
        {**request, "recipient": recipient},
        profile_locale=profile.get("locale") or None,
        user=dict(attributes) if isinstance(attributes, Mapping) else {},
    )


def needs_profile(request: Mapping[str, Any]) -> bool:
    """Whether the request alone reaches none of the channels it would use (its own
    `channels`, else its priority's chain): then only a profile makes it valid."""
    recipient = request.get("recipient") or {}
    named = request.get("channels")
    order = named if isinstance(named, list) else CHAINS.get(str(request.get("priority")), ())
    return not any(contact_point(recipient, c) for c in order if isinstance(c, str))


def check_profile(body: Mapping[str, Any]) -> None:
    """Raise ValidationError, one entry per bad field, unless `body` is a storable profile."""
    errors: list[dict[str, str]] = []

    def bad(name: str, message: str) -> None:
        errors.append({"field": name, "message": message})

    for name in body:
        if name not in PROFILE_FIELDS:
            bad(name, f"unknown field; a profile has {', '.join(PROFILE_FIELDS)}")
    check_contacts(body, bad, "")
    tokens = body.get("pushTokens")
    if isinstance(tokens, list) and (
        len(tokens) > MAX_PUSH_TOKENS
        or any(isinstance(t, str) and len(t) > MAX_TOKEN_LENGTH for t in tokens)
    ):
        bad("pushTokens", f"at most {MAX_PUSH_TOKENS} tokens of {MAX_TOKEN_LENGTH} characters")
    locale = body.get("locale")
    if locale is not None and (
        not isinstance(locale, str) or len(locale) > MAX_LOCALE or normalise_locale(locale) is None
    ):
        bad("locale", "a BCP 47 language tag, e.g. es or es-MX")
    attributes = body.get("attributes")
    if attributes is not None:
        _check_attributes(attributes, bad)
    if errors:
        raise ValidationError("invalid profile", errors)


def _check_attributes(attributes: Any, bad: Any) -> None:
    if not isinstance(attributes, Mapping):
        bad("attributes", "an object of text values")
        return
    if len(attributes) > MAX_ATTRIBUTES:
        bad("attributes", f"at most {MAX_ATTRIBUTES} attributes")
    for name, value in attributes.items():
        where = f"attributes.{name}"
        if not (isinstance(name, str) and ATTRIBUTE_NAME_RE.match(name)):
            bad(where, "a name of letters, digits and _ (64 at most), starting with a letter")
        elif not isinstance(value, str):
            bad(where, "must be text")
        elif len(value) > MAX_ATTRIBUTE_VALUE:
            bad(where, f"at most {MAX_ATTRIBUTE_VALUE} characters")
        elif UNSAFE_TEXT_RE.search(value):
            bad(where, "contains NUL or a bidirectional control (U+202A-E, U+2066-9)")


def profile_record(
    tenant: str, user_id: str, body: Mapping[str, Any], updated_at: str
) -> dict[str, Any]:
    """The UserProfile record a PUT stores: the body replaces the whole profile (a field it
    leaves out is no longer stored), with its tenant, userId and time."""
    return {
        "tenant": tenant,
        "userId": user_id,
        "email": body.get("email"),
        "phone": body.get("phone"),
        "whatsapp": body.get("whatsapp"),
        "pushTokens": list(body.get("pushTokens") or []),
        "locale": body.get("locale"),
        "timezone": body.get("timezone"),
        "attributes": dict(body.get("attributes") or {}),
        "updatedAt": updated_at,
    }


def public_profile(record: Mapping[str, Any]) -> dict[str, Any]:
    """What GET answers: the stored record without its tenant (the caller's own)."""
    return {k: v for k, v in record.items() if k != "tenant"}
