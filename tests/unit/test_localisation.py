"""Localisation (issue 12, item 4): which locale a message is rendered in, and dates,
times and numbers shown by Babel in that locale and the recipient's time zone.

A value a filter cannot read, or a time zone nobody knows, is refused where the request
is checked: 422 problem+json at the door, a dead letter `invalid` from Kafka.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from agents.ingest import ingest
from pipeline.domain.locales import normalise_locale, pick_locale
from pipeline.domain.templates import TemplateCatalog, parse_template
from pipeline.exceptions import ConfigError, TemplateDataError, TemplateError
from pipeline.runtime import Runtime
from pipeline.settings import Settings
from pipeline.template_setup import starting_catalog
from tests.unit.test_agents import event, run, statuses, world  # noqa: F401
from tests.unit.test_http_door import EXAMPLE, PROBLEM, headers, serving

DEPARTURE = "2026-11-29T14:05:00Z"  # 15:05 in Madrid (CET, UTC+1)
MADRID = "Europe/Madrid"
DELAY = {"name": "Ana", "flight": "IB3456", "oldTime": "2026-11-29T13:05:00Z",
         "newTime": DEPARTURE}  # fmt: skip
NBSP, NNBSP = "\u00a0", "\u202f"  # Babel's no-break spaces (1.234,50 €, 3:05 PM)


@pytest.mark.parametrize(
    ("request_locale", "profile", "tenant", "expected"),
    [
        pytest.param("es-MX", None, None, "es", id="region-to-language"),
        pytest.param("es_ES", None, None, "es", id="underscore"),
        pytest.param("ES-mx", None, None, "es", id="any-case"),
        pytest.param("pt", None, None, "en", id="unknown-to-template-default"),
        pytest.param("pt-BR", None, "es", "es", id="unknown-then-tenant-default"),
        pytest.param("", None, None, "en", id="empty"),
        pytest.param(None, None, None, "en", id="none"),
        pytest.param("../etc", None, None, "en", id="not-a-tag"),
        pytest.param("en", None, "es", "en", id="request-beats-tenant-default"),
        pytest.param(None, None, "es-AR", "es", id="tenant-default-by-language"),
        pytest.param(None, "es", "en", "es", id="profile-beats-tenant-default"),
        pytest.param("en-GB", "es", "es", "en", id="request-beats-profile"),
    ],
)
def test_pick_locale(
    request_locale: str | None, profile: str | None, tenant: str | None, expected: str
) -> None:
    assert pick_locale(("en", "es"), request_locale, profile, tenant) == expected


def test_pick_locale_returns_the_templates_own_key_and_its_default() -> None:
    assert pick_locale(("fr", "es_mx"), "es-MX") == "es_mx"  # as the template wrote it
    assert pick_locale(("fr", "es-MX"), "es") == "fr"  # es-MX is not es: the first one
    assert pick_locale(("fr", "es", "en"), "de") == "en"  # en when it has it
    assert pick_locale(("es-MX", "es"), "es-mx") == "es-MX"


@pytest.mark.parametrize(
    ("tag", "normal"),
    [("es_mx", "es-MX"), ("EN", "en"), ("zh_hant_tw", "zh-Hant-TW"), ("es-419", "es-419"),
     (" es ", "es"), ("", None), ("e", None), ("es--MX", None), (3, None)],
)  # fmt: skip
def test_normalise_locale(tag: Any, normal: str | None) -> None:
    assert normalise_locale(tag) == normal


def test_the_tenant_default_locale_is_a_setting() -> None:
    assert Settings.from_env({}).default_locale == "en"
    assert Settings.from_env({"HERALD_DEFAULT_LOCALE": "es"}).default_locale == "es"
    catalog = TemplateCatalog.from_dir(Settings().templates_dir, default_locale="es")
    data = {**DELAY}
    assert catalog.render("flight-cancelled", "sms", data).locale == "es"
    assert catalog.render("flight-cancelled", "sms", data, "en-US").locale == "en"
    assert catalog.render("flight-cancelled", "sms", data, "fr").locale == "es"
    assert catalog.render("flight-cancelled", "sms", data, profile_locale="en").locale == "en"


def test_a_tenant_may_have_its_own_default_locale() -> None:
    environ = {"HERALD_DEFAULT_LOCALE": "en", "HERALD_TENANT_LOCALES": "iberia=es_mx, acme=en"}
    catalog = starting_catalog(Settings.from_env(environ))
    assert catalog.tenant_locales == {"iberia": "es-MX", "acme": "en"}
    data = {**DELAY}
    assert catalog.render("flight-cancelled", "sms", data, tenant="iberia").locale == "es"
    assert catalog.render("flight-cancelled", "sms", data, tenant="other").locale == "en"
    assert catalog.render("flight-cancelled", "sms", data, "en", tenant="iberia").locale == "en"


@pytest.mark.parametrize(
    "environ",
    [{"HERALD_TENANT_LOCALES": "iberia"}, {"HERALD_TENANT_LOCALES": "=es"},
     {"HERALD_TENANT_LOCALES": "iberia=../x"}, {"HERALD_DEFAULT_LOCALE": "1"}],
)  # fmt: skip
def test_an_unusable_locale_setting_stops_the_process(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        starting_catalog(Settings.from_env(environ))


def catalog_of(text: str) -> TemplateCatalog:
    """A catalog of one template `t` whose sms, email text and html are `text`, en and es."""
    parts = {"sms": {"text": text}, "email": {"subject": "s", "text": text, "html": text}}
    return TemplateCatalog(
        [parse_template({"id": "t", "variables": ["v"], "locales": {"en": parts, "es": parts}})]
    )


@pytest.mark.parametrize(
    ("source", "value", "en", "es"),
    [
        ("{{ v | time }}", DEPARTURE, f"3:05{NNBSP}PM", "15:05"),
        ("{{ v | datetime }}", DEPARTURE, f"Nov 29, 2026, 3:05{NNBSP}PM", "29 nov 2026, 15:05"),
        ("{{ v | date }}", DEPARTURE, "Nov 29, 2026", "29 nov 2026"),
        ("{{ v | date }}", "2026-11-29T23:30:00Z", "Nov 30, 2026", "30 nov 2026"),  # Madrid
        ("{{ v | date }}", "2026-12-01", "Dec 1, 2026", "1 dic 2026"),  # a day: never shifted
        ("{{ v | date('long') }}", DEPARTURE, "November 29, 2026", "29 de noviembre de 2026"),
        ("{{ v | time }}", datetime(2026, 11, 29, 14, 5, tzinfo=UTC), f"3:05{NNBSP}PM", "15:05"),
        ("{{ v | date }}", date(2026, 12, 1), "Dec 1, 2026", "1 dic 2026"),
        ("{{ v | number }}", "1234.5", "1,234.5", "1.234,5"),
        ("{{ v | number }}", 1234567, "1,234,567", "1.234.567"),
        ("{{ v | currency('EUR') }}", "1234.5", "€1,234.50", f"1.234,50{NBSP}€"),
        ("{{ v | currency('usd') }}", 20, "$20.00", f"20,00{NBSP}US$"),
    ],
)
def test_filters_format_for_the_locale_in_the_recipients_zone(
    source: str, value: Any, en: str, es: str
) -> None:
    catalog = catalog_of(source)
    shown = {
        loc: catalog.render("t", "email", {"v": value}, loc, timezone=MADRID).text
        for loc in ("en", "es")
    }
    assert shown == {"en": en, "es": es}


def test_without_a_zone_times_are_utc_and_an_sms_has_plain_spaces() -> None:
    """Babel's no-break spaces would turn a whole SMS into UCS-2 (70 characters a part)."""
    catalog = catalog_of("{{ v | time }}")
    assert catalog.render("t", "email", {"v": DEPARTURE}, "en").text == f"2:05{NNBSP}PM"
    assert catalog.render("t", "sms", {"v": DEPARTURE}, "en").text == "2:05 PM"
    money = catalog_of("{{ v | currency('EUR') }}")
    assert money.render("t", "sms", {"v": 5}, "es").text == "5,00 €"


def test_the_flight_delay_shows_times_in_madrid(templates: TemplateCatalog) -> None:
    def sms(locale: str | None) -> str:
        return templates.render("flight-delay", "sms", DELAY, locale, timezone=MADRID).text

    assert sms("es-MX") == ("Ana, tu vuelo IB3456 sale con retraso: nueva hora de salida 15:05 "
                            "(antes 14:05). Sentimos las molestias.")  # fmt: skip
    assert sms(None) == ("Ana, flight IB3456 is delayed: new departure 3:05 PM (was 2:05 PM). "
                         "We are sorry for the inconvenience.")  # fmt: skip
    email = templates.render("flight-delay", "email", DELAY, "es", timezone=MADRID)
    assert email.subject == "Tu vuelo IB3456 tiene retraso: nueva salida a las 15:05"
    assert "salga el 29 nov 2026 a las 15:05" in email.text
    push = templates.render("flight-delay", "push", DELAY, "en", timezone=MADRID)
    assert push.data is not None and push.data["newTime"] == DEPARTURE  # for the app: as sent


@pytest.mark.parametrize(
    ("source", "value", "fields", "says"),
    [
        ("{{ v | datetime }}", "tomorrow", ["data.v"], "RFC 3339"),
        ("{{ v | time }}", "2026-11-29T14:05:00", ["data.v"], "with an offset"),  # no zone
        ("{{ v | date }}", "2026-13-01", ["data.v"], "a date (2026-12-01)"),
        ("{{ v | time }}", 1234, ["data.v"], "RFC 3339"),
        ("{{ v | number }}", "twelve", ["data.v"], "a number"),
        ("{{ v | number }}", "NaN", ["data.v"], "a finite number"),
        ("{{ v | currency('XYZ') }}", "5", ["data.v"], "ISO 4217"),
        ("{{ (v ~ 'x') | time }}", "12:00", ["data"], "RFC 3339"),  # computed: no field
    ],
)
def test_a_value_a_filter_cannot_read_is_a_template_data_error(
    source: str, value: Any, fields: list[str], says: str
) -> None:
    with pytest.raises(TemplateDataError) as caught:
        catalog_of(source).render("t", "email", {"v": value}, "en")
    assert [e["field"] for e in caught.value.errors] == fields
    assert says in str(caught.value) and "template 't'" in str(caught.value)


def test_an_unknown_zone_is_a_template_data_error_and_a_bad_format_a_template_error() -> None:
    with pytest.raises(TemplateDataError) as caught:
        catalog_of("{{ v | time }}").render("t", "sms", {"v": DEPARTURE}, timezone="Mars/Base")
    assert [e["field"] for e in caught.value.errors] == ["recipient.timezone"]
    for source, name in (("{{ v | date('nonsense') }}", "date"), ("{{ v | currency }}", "currency"),
                         ("{{ v | time(colour='red') }}", "time")):  # fmt: skip
        with pytest.raises(TemplateError, match=f"`{name}` filter failed"):
            catalog_of(source).render("t", "sms", {"v": DEPARTURE})
    assert (
        catalog_of("{{ v | date(format='long') }}").render("t", "sms", {"v": DEPARTURE}, "es").text
        == "29 de noviembre de 2026"
    )


def test_data_cannot_stand_in_for_the_render_settings() -> None:
    out = catalog_of("{{ v | time }}").render(
        "t", "sms", {"v": DEPARTURE, "herald:render": "es"}, "en", timezone=MADRID
    )
    assert out.text == "3:05 PM"


async def test_the_door_refuses_an_unreadable_time_or_an_unknown_zone_with_422() -> None:
    delay = {**EXAMPLE, "template": "flight-delay", "data": DELAY}
    unreadable = {**delay, "data": {**DELAY, "newTime": "half past three"}}
    unknown_zone = {**delay, "recipient": {**EXAMPLE["recipient"], "timezone": "Mars/Base"}}
    in_madrid = {**delay, "recipient": {**EXAMPLE["recipient"], "timezone": MADRID}}
    async with serving() as (client, rt):
        answers = []
        for body in (unreadable, unknown_zone, in_madrid, EXAMPLE):
            resp = await client.post("/v1/notifications", json=body, headers=headers())
            answers.append((resp.status, resp.content_type, await resp.json()))
    (bad_time, bad_zone, madrid, example) = answers
    assert bad_time[:2] == (422, PROBLEM)
    assert [e["field"] for e in bad_time[2]["errors"]] == ["data.newTime"]
    assert "RFC 3339" in bad_time[2]["errors"][0]["message"]
    assert bad_zone[:2] == (422, PROBLEM)
    assert [e["field"] for e in bad_zone[2]["errors"]] == ["recipient.timezone"]
    assert (madrid[0], example[0]) == (202, 202)
    assert [r["template"] for _k, r in rt.sinks.requests.sent] == [
        "flight-delay", EXAMPLE["template"],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "recipient", "says"),
    [
        pytest.param({"newTime": "25:99"}, {}, "RFC 3339", id="unreadable-time"),
        pytest.param({}, {"timezone": "Nowhere/Town"}, "recipient.timezone", id="unknown-zone"),
    ],
)
async def test_from_kafka_an_unreadable_time_or_unknown_zone_is_an_invalid_dead_letter(
    world: Runtime,  # noqa: F811
    make_request: Any,
    data: dict[str, str],
    recipient: dict[str, str],
    says: str,
) -> None:
    rt = world
    request = make_request(template="flight-delay", priority="high")
    request["data"] = {**DELAY, **data}
    request["recipient"] = {**request["recipient"], **recipient}
    value = rt.codec.encode("NotificationRequest", request)
    stream = await run(ingest, rt, [[event("herald.notifications.requests", 5, "acme:u-1", value)]])
    [letter] = rt.sinks.dlq.values()
    assert letter["reason"] == "invalid" and letter["offset"] == 5
    assert says in letter["error"]
    assert statuses(rt) == ["DLQ"]
    assert all(not sink.values() for sink in rt.sinks.dispatch.values())
    assert stream.acked == [5]


async def test_from_kafka_a_flight_delay_in_madrid_is_dispatched_in_local_time(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    request = make_request(template="flight-delay", priority="high", channels=["sms"])
    request["data"] = dict(DELAY)
    request["recipient"] = {**request["recipient"], "phone": "+34600111222", "locale": "es-MX",
                            "timezone": MADRID}  # fmt: skip
    value = rt.codec.encode("NotificationRequest", request)
    await run(ingest, rt, [[event("herald.notifications.requests", 5, "acme:u-1", value)]])
    [dispatch] = rt.sinks.dispatch[("sms", "urgent")].values()
    assert dispatch["locale"] == "es"
    assert "nueva hora de salida 15:05 (antes 14:05)" in dispatch["text"]
