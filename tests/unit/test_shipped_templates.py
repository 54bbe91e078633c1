"""The shipped templates: the contract's table, complete content, declared variables.

Every template of the contract's table ships in English and Spanish with content for
every channel; what each part uses (jinja2's `meta.find_undeclared_variables`, per
locale, channel, part and variant) is what the template declares; each renders with
sample data; the SMS texts fit one GSM-7 segment with typical data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from jinja2 import meta

from pipeline.domain.templates import Template, TemplateCatalog
from pipeline.domain.user_view import USER_VARIABLE

# The contract's "Shipped example templates" table: id -> (priority, variables).
CONTRACT = {
    "booking-confirmation": (
        "standard", {"name", "bookingRef", "flight", "date", "origin", "destination"},
    ),
    "flight-delay": ("high", {"name", "flight", "oldTime", "newTime"}),
    "gate-change": ("high", {"name", "flight", "oldGate", "newGate"}),
    "flight-cancelled": ("high", {"name", "flight"}),
    "boarding-call": ("high", {"name", "flight", "gate"}),
    "newsletter": ("marketing", {"name", "offer"}),
}  # fmt: skip
LOCALES = {"en", "es"}
PARTS = {  # channel -> the parts it must have
    "email": {"subject", "text", "html"},
    "sms": {"text"},
    "whatsapp": {"text", "template"},
    "push": {"subject", "text", "data"},
}
# Typical data: what a passenger's message carries.
SAMPLE = {
    "name": "Valentina", "bookingRef": "X7K2LQ", "flight": "IB3456", "date": "2026-12-01",
    "origin": "MAD", "destination": "BCN", "oldTime": "2026-12-01T09:45:00Z",
    "newTime": "2026-12-01T11:30:00Z",
    "oldGate": "B12", "newGate": "C27", "gate": "C27", "offer": "20% off flights to Lisbon",
}  # fmt: skip
# GSM 03.38 basic character set (one septet each); the extension table costs two.
# How the values the templates format (Babel, UTC without a recipient's zone) are shown.
SHOWN = {
    "en": {"oldTime": "9:45\u202fAM", "newTime": "11:30\u202fAM"},
    "es": {"oldTime": "9:45", "newTime": "11:30"},
}
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = set("^{}\\[~]|€\f")


def variants_of(template: Template) -> list[str | None]:
    return [v.name for v in template.variants] or [None]


def sources(parts: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(part, jinja2 source) of every rendered part; push `data` values one by one."""
    for part, value in parts.items():
        if part == "template":
            continue  # the approved WhatsApp template: parameter names, not jinja2
        if isinstance(value, Mapping):
            yield from ((f"{part}.{k}", str(v)) for k, v in value.items())
        else:
            yield part, str(value)


def user_with(template: Template, variant: str | None) -> str:
    """A user id the template assigns `variant` to."""
    return next(
        f"u-{i}" for i in range(10_000) if template.variant_for("acme", f"u-{i}") == variant
    )


def test_every_contract_template_ships(templates: TemplateCatalog) -> None:
    shipped = {
        t.id: (t.priority, set(t.variables), t.version) for t in templates.templates.values()
    }
    assert shipped == {tid: (p, v, 1) for tid, (p, v) in CONTRACT.items()}
    newsletter = templates.get("newsletter")
    assert [(v.name, v.weight) for v in newsletter.variants] == [("a", 50), ("b", 50)]
    assert all(not templates.get(t).variants for t in CONTRACT if t != "newsletter")


@pytest.mark.parametrize("template_id", sorted(CONTRACT))
def test_every_channel_in_every_locale(templates: TemplateCatalog, template_id: str) -> None:
    template = templates.get(template_id)
    assert set(template.locales) == LOCALES
    for locale in LOCALES:
        assert template.channels(locale) == set(PARTS)
        for variant in variants_of(template):
            for channel, parts in PARTS.items():
                assert set(template.parts(locale, channel, variant)) == parts, (locale, channel)


@pytest.mark.parametrize("template_id", sorted(CONTRACT))
def test_declared_variables_match_content(templates: TemplateCatalog, template_id: str) -> None:
    """Each part uses only declared variables; each locale and variant uses them all."""
    env = templates.env  # with the catalog's filters (datetime, time, ...)
    template = templates.get(template_id)
    declared = set(template.variables)
    for locale in LOCALES:
        for variant in variants_of(template):
            used_here: set[str] = set()
            for channel in PARTS:
                parts = template.parts(locale, channel, variant)
                for part, source in sources(parts):
                    # `user` (the profile's attributes) is Herald's, not the request's data.
                    used = meta.find_undeclared_variables(env.parse(source)) - {USER_VARIABLE}
                    assert used <= declared, (locale, variant, channel, part, used - declared)
                    used_here |= used
                approved = template.whatsapp_template(locale, variant)
                if channel == "whatsapp":
                    assert approved is not None and approved.language == locale
                    assert approved.parameters and set(approved.parameters) <= declared
                    used_here |= set(approved.parameters)
            assert used_here == declared, (locale, variant, declared - used_here)


@pytest.mark.parametrize("template_id", sorted(CONTRACT))
def test_renders_every_channel_locale_and_variant(
    templates: TemplateCatalog, template_id: str
) -> None:
    template = templates.get(template_id)
    data = {v: SAMPLE[v] for v in template.variables}
    for variant in variants_of(template):
        user = user_with(template, variant)
        for locale in LOCALES:
            seen = ""
            for channel in PARTS:
                out = templates.render(template_id, channel, data, locale, tenant="acme",
                                       user_id=user)  # fmt: skip
                assert (out.locale, out.channel, out.variant) == (locale, channel, variant)
                assert out.text and "{{" not in out.text and "{%" not in out.text
                seen += out.text + (out.subject or "")
                if channel == "email":
                    assert out.subject and out.html and out.html.lstrip().startswith("<p>")
                if channel == "push":
                    assert out.subject and out.data and out.data["type"] == template_id
                    assert all(isinstance(v, str) and v for v in out.data.values())
                if channel == "whatsapp":
                    assert out.approved == template.whatsapp_template(locale, variant)
                    values = out.approved.values(data) if out.approved else ()
                    assert values == tuple(SAMPLE[p] for p in out.approved.parameters)
                else:
                    assert out.approved is None
            shown = {v: SHOWN[locale].get(v, SAMPLE[v]) for v in data}
            assert all(value in seen for value in shown.values()), (locale, shown)


@pytest.mark.parametrize("template_id", sorted(CONTRACT))
@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_sms_fits_one_gsm7_segment(
    templates: TemplateCatalog, template_id: str, locale: str
) -> None:
    template = templates.get(template_id)
    data = {v: SAMPLE[v] for v in template.variables}
    for variant in variants_of(template):
        out = templates.render(template_id, "sms", data, locale, tenant="acme",
                               user_id=user_with(template, variant))  # fmt: skip
        outside = set(out.text) - GSM7 - GSM7_EXT
        septets = len(out.text) + sum(c in GSM7_EXT for c in out.text)
        assert not outside, (variant, outside)
        assert septets <= 160, (variant, septets, out.text)


def test_english_and_spanish_differ(templates: TemplateCatalog) -> None:
    """Every Spanish part is translated, not a copy of the English one."""
    for template in templates.templates.values():
        for variant in variants_of(template):
            for channel in PARTS:
                en = dict(sources(template.parts("en", channel, variant)))
                es = dict(sources(template.parts("es", channel, variant)))
                for part in en:
                    if part.startswith("data."):
                        continue  # machine data for the app: the same in every language
                    assert en[part] != es[part], (template.id, variant, channel, part)
