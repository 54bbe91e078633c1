"""User profiles: resolving a request's recipient, checking a PUT body, `user` in templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from jinja2.exceptions import SecurityError

from pipeline.domain.limits import Limits
from pipeline.domain.planning import check_fits, plan_request
from pipeline.domain.profiles import (
    MAX_ATTRIBUTES,
    MAX_PUSH_TOKENS,
    check_profile,
    profile_record,
    public_profile,
    resolve,
)
from pipeline.domain.templates import TemplateCatalog
from pipeline.domain.user_view import UserAttributes
from pipeline.domain.validation import check_request
from pipeline.exceptions import ValidationError

PROFILE = {
    "tenant": "acme", "userId": "u-1", "email": "ana@profile.example", "phone": "+34600111222",
    "whatsapp": None, "pushTokens": [], "locale": "es", "timezone": "Europe/Madrid",
    "attributes": {"tier": "gold"}, "updatedAt": "2026-11-28T10:00:00.000Z",
}  # fmt: skip
ONLY_USER = {"email": None}  # make_request's recipient without its email: the userId alone


def test_the_profile_fills_what_the_request_lacks(make_request: Any) -> None:
    resolved = resolve(make_request(recipient=ONLY_USER), PROFILE)
    recipient = resolved.request["recipient"]
    assert (recipient["email"], recipient["phone"]) == ("ana@profile.example", "+34600111222")
    assert (recipient["locale"], recipient["timezone"]) == ("es", "Europe/Madrid")
    assert recipient["pushTokens"] is None  # the profile's empty list fills nothing
    assert (resolved.profile_locale, resolved.user) == ("es", {"tier": "gold"})


def test_what_the_request_carries_overrides_the_profile(make_request: Any) -> None:
    request = make_request(recipient={"email": "ana@request.example", "locale": "en",
                                      "timezone": "America/Mexico_City"})  # fmt: skip
    recipient = resolve(request, PROFILE).request["recipient"]
    assert recipient["email"] == "ana@request.example"
    assert (recipient["locale"], recipient["timezone"]) == ("en", "America/Mexico_City")
    assert recipient["phone"] == "+34600111222"  # not in the request: the profile's
    assert request["recipient"]["phone"] is None  # the request itself is left as it was


def test_without_a_profile_the_request_is_as_it_was(make_request: Any) -> None:
    request = make_request()
    resolved = resolve(request, None)
    assert (resolved.request, resolved.profile_locale, resolved.user) == (request, None, {})


def test_a_request_naming_only_its_user_is_valid_with_a_profile(
    make_request: Any, templates: TemplateCatalog
) -> None:
    request = make_request(recipient=ONLY_USER)
    with pytest.raises(ValidationError):
        check_request(request, templates)
    check_request(resolve(request, PROFILE).request, templates)
    check_fits(request, templates=templates, limits=Limits.compute(), channels=["email"],
               profile=PROFILE)  # fmt: skip


def test_ingest_renders_with_the_profile(
    make_request: Any, templates: TemplateCatalog, now: datetime
) -> None:
    encoded: list[Any] = []

    def encode(record: Any) -> bytes:
        encoded.append(record)
        return b"resolved"

    plan = plan_request(
        make_request(recipient=ONLY_USER), b"original", templates=templates, preferences=None,
        available={"email", "sms"}, now=now, profile=PROFILE, encode=encode,
    )  # fmt: skip
    assert plan.dead_letter_reason is None
    [(channel, _lane, dispatch)] = plan.dispatches
    assert (channel, dispatch["to"], dispatch["locale"]) == ("email", "ana@profile.example", "es")
    assert "Como miembro Gold" in dispatch["text"]
    # A fallback channel is rendered from the resolved request: the profile's phone, locale.
    assert dispatch["request"] == b"resolved"
    assert encoded[0]["recipient"]["phone"] == "+34600111222"


def test_ingest_without_profile_or_contact_point_is_refused(
    make_request: Any, templates: TemplateCatalog, now: datetime
) -> None:
    plan = plan_request(
        make_request(recipient=ONLY_USER), b"original", templates=templates, preferences=None,
        available={"email"}, now=now, profile=None,
    )  # fmt: skip
    assert plan.dead_letter_reason == "invalid" and plan.dispatches == []
    assert plan.statuses[0]["status"] == "DLQ"


@pytest.mark.parametrize(
    ("tier", "locale", "line"),
    [("gold", "en", "As a Gold member"), ("gold", "es", "Como miembro Gold"),
     ("silver", "en", None), (None, "es", None)],
)  # fmt: skip
def test_booking_confirmation_has_a_gold_tier_line(
    templates: TemplateCatalog, make_request: Any, tier: str | None, locale: str, line: str | None
) -> None:
    user = {} if tier is None else {"tier": tier}
    data = make_request()["data"]
    rendered = templates.render("booking-confirmation", "email", data, locale, user=user)
    if line is None:
        assert "Gold" not in rendered.text and "Gold" not in (rendered.html or "")
        assert "\n\n\n" not in rendered.text  # no blank lines where the condition was
    else:
        assert line in rendered.text and line in (rendered.html or "")


def test_an_absent_attribute_is_none_not_an_error() -> None:
    user = UserAttributes({"tier": "gold"})
    assert (user.tier, user["tier"], user.missing, user["missing"]) == ("gold", "gold", None, None)
    with pytest.raises(AttributeError):
        _ = user._values_of_someone_else
    assert not UserAttributes() and UserAttributes({"a": "b"})


def test_the_sandbox_still_refuses_internals(templates: TemplateCatalog) -> None:
    template = templates.env.from_string("{{ user.tier }}{{ user.__class__ }}")
    with pytest.raises(SecurityError):
        template.render(user=UserAttributes({"tier": "gold"}))


# (body, the field its error names): refused by the domain rules and over HTTP alike.
BAD_PROFILES = [
    ({"email": "ana"}, "email"),
    ({"email": "Ana <ana@example.com>"}, "email"),
    ({"phone": "600111222"}, "phone"),
    ({"whatsapp": "+0123"}, "whatsapp"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"locale": "not a tag"}, "locale"),
    ({"locale": "../etc"}, "locale"),
    ({"pushTokens": [""]}, "pushTokens"),
    ({"pushTokens": ["t"] * (MAX_PUSH_TOKENS + 1)}, "pushTokens"),
    ({"attributes": {"tier": 3}}, "attributes.tier"),
    ({"attributes": {"_secret": "x"}}, "attributes._secret"),
    ({"attributes": {"tier": "x" * 2000}}, "attributes.tier"),
    ({"attributes": {"tier": "g\u202eold"}}, "attributes.tier"),
    ({"attributes": {f"a{i}": "x" for i in range(MAX_ATTRIBUTES + 1)}}, "attributes"),
    ({"nickname": "Ana"}, "nickname"),
]


@pytest.mark.parametrize(("body", "field"), BAD_PROFILES)
def test_a_bad_profile_body_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_profile(body)
    assert field in [e["field"] for e in caught.value.errors]


def test_a_good_profile_is_stored_whole() -> None:
    body = {"email": "ana@example.com", "locale": "es-MX", "attributes": {"tier": "gold"}}
    check_profile(body)
    record = profile_record("acme", "u-1", body, "2026-11-28T10:00:00.000Z")
    assert record["phone"] is None and record["pushTokens"] == []  # a PUT replaces
    assert (record["tenant"], record["userId"], record["locale"]) == ("acme", "u-1", "es-MX")
    assert "tenant" not in public_profile(record)
