"""Templates: rendering per channel and locale, fallbacks, errors, escaping."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.domain.templates import ApprovedTemplate, Template, TemplateCatalog, parse_template
from pipeline.exceptions import TemplateError


@pytest.mark.parametrize(
    ("locale", "subject", "greeting"),
    [
        ("en", "Booking X7K2LQ confirmed: MAD to BCN", "Hello Ana,"),
        ("es", "Reserva X7K2LQ confirmada: MAD a BCN", "Hola Ana:"),
    ],
)
def test_render_booking_confirmation(
    templates: TemplateCatalog, booking: dict[str, Any], locale: str, subject: str, greeting: str
) -> None:
    out = templates.render("booking-confirmation", "email", booking, locale)
    assert (out.locale, out.channel, out.subject) == (locale, "email", subject)
    assert out.text.startswith(greeting) and "IB3456" in out.text and "2026-12-01" in out.text
    assert out.html is not None and "<strong>X7K2LQ</strong>" in out.html


@pytest.mark.parametrize(
    ("candidates", "locale"),
    [
        (("es-ES",), "es"),
        (("es_MX",), "es"),
        (("ES",), "es"),
        (("en-GB",), "en"),
        (("fr",), "en"),
        ((None,), "en"),
        ((), "en"),
        ((None, "fr-FR", "es"), "es"),
    ],
)
def test_resolve_locale(
    templates: TemplateCatalog, candidates: tuple[str | None, ...], locale: str
) -> None:
    assert templates.get("booking-confirmation").resolve_locale(*candidates) == locale


def test_render_falls_back_by_locale(templates: TemplateCatalog, booking: dict[str, Any]) -> None:
    es = templates.render("booking-confirmation", "sms", booking, "es-ES")
    fr = templates.render("booking-confirmation", "sms", booking, "fr-FR")
    assert (es.locale, es.text) == (
        "es",
        "Ana, reserva X7K2LQ confirmada: IB3456 MAD-BCN el 2026-12-01.",
    )
    assert (fr.locale, fr.text) == (
        "en",
        "Ana, booking X7K2LQ confirmed: IB3456 MAD-BCN on 2026-12-01.",
    )


def test_render_missing_variable(templates: TemplateCatalog, booking: dict[str, Any]) -> None:
    data = {k: v for k, v in booking.items() if k != "destination"}
    with pytest.raises(TemplateError) as exc:
        templates.render("booking-confirmation", "email", data, "en")
    assert exc.value.errors == [
        {"field": "data.destination", "message": "required by the template"}
    ]


def test_render_escapes_html_only(templates: TemplateCatalog, booking: dict[str, Any]) -> None:
    out = templates.render(
        "booking-confirmation", "email", {**booking, "name": "<script>x()</script>"}, "en"
    )
    assert out.html is not None
    assert "&lt;script&gt;x()&lt;/script&gt;" in out.html and "<script>" not in out.html
    assert out.text.startswith("Hello <script>x()</script>,")  # plain text is not HTML


def test_render_whatsapp_approved_and_push_data(
    templates: TemplateCatalog, booking: dict[str, Any]
) -> None:
    """WhatsApp carries the approved template (for outside the 24 h window), push its data;
    data values are plain strings, never HTML-escaped."""
    whatsapp = templates.render("booking-confirmation", "whatsapp", booking, "es-MX")
    assert whatsapp.approved == ApprovedTemplate(
        "booking_confirmation",
        "es",
        ("name", "bookingRef", "flight", "origin", "destination", "date"),
    )
    assert whatsapp.approved.values(booking) == (
        "Ana",
        "X7K2LQ",
        "IB3456",
        "MAD",
        "BCN",
        "2026-12-01",
    )
    push = templates.render("booking-confirmation", "push", {**booking, "flight": "<IB&1>"}, "en")
    assert (push.subject, push.data, push.approved) == (
        "Booking X7K2LQ confirmed",
        {"type": "booking-confirmation", "bookingRef": "X7K2LQ", "flight": "<IB&1>"},
        None,
    )


def custom(text: str, variables: tuple[str, ...] = ()) -> TemplateCatalog:
    return TemplateCatalog([Template("t", "standard", variables, {"en": {"sms": {"text": text}}})])


@pytest.mark.parametrize(
    ("catalog", "channel", "data"),
    [
        pytest.param(custom("hi"), "push", {}, id="no-content-for-channel"),
        pytest.param(custom("{{ undeclared }}"), "sms", {}, id="undeclared-variable"),
        pytest.param(custom("{{ x.__class__.__mro__ }}", ("x",)), "sms", {"x": 1}, id="sandbox"),
    ],
)
def test_render_errors(catalog: TemplateCatalog, channel: str, data: dict[str, Any]) -> None:
    with pytest.raises(TemplateError):
        catalog.render("t", channel, data)


def test_unknown_template(templates: TemplateCatalog) -> None:
    with pytest.raises(TemplateError) as exc:
        templates.render("nope", "email", {}, "en")
    assert [e["field"] for e in exc.value.errors] == ["template"]


BASE = {"en": {"sms": {"text": "hi"}}}


@pytest.mark.parametrize("version", [0, -1, "2", True, 1.5])
def test_bad_versions_are_refused(version: Any) -> None:
    with pytest.raises(TemplateError, match="version"):
        parse_template({"id": "t", "version": version, "locales": BASE})


def test_version_defaults_to_one() -> None:
    assert parse_template({"id": "t", "locales": BASE}).version == 1
    assert Template("t", "standard", (), BASE).version == 1


@pytest.mark.parametrize(
    "approved",
    [
        pytest.param({"language": "en"}, id="no-name"),
        pytest.param({"name": "x", "parameters": ["nope"]}, id="undeclared-parameter"),
        pytest.param({"name": "x", "parameters": "name"}, id="parameters-not-a-list"),
        pytest.param("x", id="not-a-mapping"),
    ],
)
def test_bad_approved_templates_are_refused(approved: Any) -> None:
    """Also in a variant: the part it replaces is checked as the template's own."""
    locales = {"en": {"whatsapp": {"text": "{{ name }}", "template": {"name": "ok"}}}}
    with pytest.raises(TemplateError, match=r"approved template|parameters"):
        parse_template({"id": "t", "variables": ["name"], "locales": locales, "variants": {
            "a": {"weight": 1}, "b": {"weight": 1, "locales": {
                "en": {"whatsapp": {"template": approved}}}}}})  # fmt: skip
