"""The template registry without a broker: the save checks, the catalog per tenant, the
view that applies `herald.templates` records, and `/v1/templates` over the HTTP door."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.ingest import ingest
from agents.send import render_next
from pipeline.domain.planning import render_dispatch
from pipeline.domain.records import PENDING_HEADER, TEMPLATE_VERSION_HEADER
from pipeline.domain.template_checks import check_saved
from pipeline.domain.templates import TemplateCatalog
from pipeline.exceptions import TemplateError
from pipeline.http.api import Ingress
from pipeline.http.auth import TokenVerifier, issue_token
from pipeline.http.door import InlineDoor
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.template_view import TemplateView
from pipeline.runtime import Runtime
from tests.unit.faustkit import Ev, Msg
from tests.unit.test_agents import run, world  # noqa: F401 (fixture)
from tests.unit.test_http_door import PROBLEM, SECRET, Topic, stand_in

pytestmark = pytest.mark.unit


def doc(text: str, variables: tuple[str, ...] = ("name",), **more: Any) -> dict[str, Any]:
    return {"id": "t", "variables": list(variables), "locales": {"en": {"sms": {"text": text}}},
            **more}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "variables", "says"),
    [
        ("{{ ''.__class__ }}{{ name }}", ("name",), "'__class__'"),
        ("{{ name.__class__.__mro__ }}", ("name",), "'__class__'"),
        ("{{ name['__globals__'] }}", ("name",), "'__globals__'"),
        ("{{ name | attr('__class__') }}", ("name",), "filter 'attr'"),
        ("{{ _secret }}{{ name }}", ("name",), "'_secret'"),
        ("{{ name }}{{ 9 ** 9 ** 9 }}", ("name",), "'**'"),
        ("{{ name", ("name",), "does not compile"),
        ("{{ name | no_such_filter }}", ("name",), "No filter named"),
        ("{{ name }} {{ flight }}", ("name",), "'flight' is used but not declared"),
        ("{{ name }}", ("name", "flight"), "'flight' is declared but never used"),
    ],
)
def test_a_template_that_could_hurt_or_fail_is_refused_when_saved(
    templates: TemplateCatalog, text: str, variables: tuple[str, ...], says: str
) -> None:
    with pytest.raises(TemplateError) as refused:
        check_saved(doc(text, variables), templates.env)
    assert any(says in e["message"] for e in refused.value.errors), refused.value.errors
    assert all(e["field"] for e in refused.value.errors)


def test_every_shipped_template_passes_the_save_checks(templates: TemplateCatalog) -> None:
    for template in templates.templates.values():
        assert check_saved(template.document, templates.env).id == template.id


def test_profile_attributes_need_no_declaring(templates: TemplateCatalog) -> None:
    text = "{{ name }}{% if user.tier == 'gold' %} (gold){% endif %}"
    assert check_saved(doc(text), templates.env).variables == ("name",)


def test_an_approved_whatsapp_parameter_counts_as_a_use(templates: TemplateCatalog) -> None:
    parts = {"text": "Hi", "template": {"name": "hi", "parameters": ["name"]}}
    saved = check_saved(
        {"id": "t", "variables": ["name"], "locales": {"en": {"whatsapp": parts}}}, templates.env
    )
    assert saved.whatsapp_template("en") is not None


def test_a_tenants_template_is_its_own(templates: TemplateCatalog) -> None:
    mine = check_saved({**doc("Mine {{ name }}"), "id": "booking-confirmation", "version": 2},
                       templates.env)  # fmt: skip
    templates.store("acme", mine)
    data = {"name": "Ana"}
    assert templates.render("booking-confirmation", "sms", data, tenant="acme").text == "Mine Ana"
    assert templates.render("booking-confirmation", "sms", data, tenant="acme").version == 2
    with pytest.raises(TemplateError):  # globex still has the shipped one: it needs more data
        templates.render("booking-confirmation", "sms", data, tenant="globex")
    assert templates.get("booking-confirmation", "globex").version == 1
    assert [t.version for t in templates.listing("acme") if t.id == "booking-confirmation"] == [2]
    templates.drop("acme", "booking-confirmation")
    assert templates.get("booking-confirmation", "acme").version == 1


def record(codec: AvroCodec, text: str, *, tenant: str = "acme", version: int = 1) -> bytes:
    body = {"variables": ["name"], "locales": {"en": {"sms": {"text": text}}}}
    return codec.encode("TemplateDocument", {
        "tenant": tenant, "templateId": "welcome", "version": version,
        "document": json.dumps(body), "updatedAt": "2026-11-29T10:00:00Z",
    })  # fmt: skip


def test_the_view_applies_records_and_tombstones(
    codec: AvroCodec, templates: TemplateCatalog
) -> None:
    view = TemplateView(codec, templates)
    view.apply(b"acme:welcome", record(codec, "Hi {{ name }}"))
    view.apply(b"acme:welcome", record(codec, "Hello {{ name }}", version=2))
    rendered = templates.render("welcome", "sms", {"name": "Ana"}, tenant="acme")
    assert (rendered.text, rendered.version) == ("Hello Ana", 2)
    view.apply(b"acme:welcome", None)
    assert templates.find("welcome", "acme") is None and view.refused == 0


@pytest.mark.parametrize(
    ("key", "text", "tenant"),
    [
        (b"acme:welcome", "{{ name.__class__ }}", "acme"),  # produced past the API's checks
        (b"globex:welcome", "Hi {{ name }}", "acme"),  # another tenant's key
        (b"acme:welcome", "Hi {{ name }}", "globex"),
        (b"acme", "Hi {{ name }}", "acme"),
    ],
)
def test_the_view_never_applies_what_the_api_would_refuse(
    codec: AvroCodec, templates: TemplateCatalog, key: bytes, text: str, tenant: str
) -> None:
    view = TemplateView(codec, templates)
    view.apply(key, record(codec, text, tenant=tenant))
    assert view.refused == 1 and not templates.saved


class ViewTopic(Topic):
    """`herald.templates` as the door sees it: each record read back by the process's view."""

    def __init__(self, codec: AvroCodec, view: TemplateView) -> None:
        super().__init__()
        self.codec, self.view = codec, view

    async def send(
        self, key: str, value: Any, headers: dict[str, bytes] | None = None
    ) -> asyncio.Future[None]:
        ack = await super().send(key, value, headers)
        loop = asyncio.get_running_loop()
        loop.call_later(
            0.05, self.view.apply, key.encode(), self.codec.encode("TemplateDocument", value)
        )
        return ack


@asynccontextmanager
async def serving(codec: AvroCodec) -> AsyncIterator[tuple[TestClient, Any]]:
    rt = stand_in()
    rt.sinks.templates = ViewTopic(codec, TemplateView(codec, rt.templates))
    app = Ingress(InlineDoor(rt, lambda: True), TokenVerifier(secret=SECRET)).build()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, rt


def manager(tenant: str = "acme", scope: str = "templates:manage") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, tenant, scope)}"}


BODY = {"priority": "high", "variables": ["name", "flight", "oldGate", "newGate"], "locales": {
    "en": {"sms": {"text": "{{ name }}: {{ flight }} now boards at {{ newGate }} "
                           "(was {{ oldGate }})."}},
}}  # fmt: skip


async def test_a_saved_template_is_answered_read_back_and_listed(codec: AvroCodec) -> None:
    async with serving(codec) as (client, rt):
        saved = await client.put("/v1/templates/gate-change", json=BODY, headers=manager())
        assert saved.status == 200, await saved.text()  # the shipped one was version 1
        assert (await saved.json())["version"] == 2
        read = await (await client.get("/v1/templates/gate-change", headers=manager())).json()
        theirs = await (await client.get("/v1/templates/gate-change", headers=manager("g"))).json()
        listing = await (await client.get("/v1/templates", headers=manager())).json()
        new = await client.put("/v1/templates/gate-change-2", json=BODY, headers=manager())
        first = await new.json()
    assert (read["version"], read["source"], read["locales"]) == (2, "saved", BODY["locales"])
    assert (theirs["source"], theirs["version"]) == ("shipped", 1)
    assert {"id": "gate-change", "version": 2, "priority": "high", "source": "saved"} in (
        listing["templates"]
    )
    assert new.status == 201 and first["version"] == 1
    [(key, value), _] = rt.sinks.templates.sent
    assert key == "acme:gate-change" and value["tenant"] == "acme" and value["version"] == 2
    assert rt.templates.render(
        "gate-change", "sms", {"name": "Ana", "flight": "IB1", "oldGate": "A1", "newGate": "B2"},
        tenant="acme",
    ).text == "Ana: IB1 now boards at B2 (was A1)."  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**BODY, "locales": {"en": {"sms": {"text": "{{ ''.__class__ }}"}}}}, 422, "locales"),
        ({**BODY, "locales": {"en": {"fax": {"text": "{{ name }}"}}}}, 422, None),
        ({**BODY, "version": 7}, 422, "version"),
        ({**BODY, "locales": {}}, 422, "locales"),
        ({**BODY, "priority": "urgent"}, 422, "priority"),
    ],
)
async def test_a_refused_template_is_a_problem_and_nothing_is_saved(
    codec: AvroCodec, body: dict[str, Any], status: int, field: str | None
) -> None:
    async with serving(codec) as (client, rt):
        resp = await client.put("/v1/templates/gate-change", json=body, headers=manager())
        assert resp.status == status and resp.content_type == PROBLEM, await resp.text()
        problem = await resp.json()
    if field is not None:
        assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    assert rt.sinks.templates.sent == [] and not rt.templates.saved


async def test_templates_need_their_scope_and_unknown_ones_are_404(codec: AvroCodec) -> None:
    async with serving(codec) as (client, _):
        sender = manager(scope="notifications:send")
        assert (await client.put("/v1/templates/x", json=BODY, headers=sender)).status == 403
        assert (await client.get("/v1/templates", headers=sender)).status == 403
        missing = await client.get("/v1/templates/nope", headers=manager())
    assert missing.status == 404 and missing.content_type == PROBLEM


async def test_ingest_renders_from_the_version_the_door_checked(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    """The door saw version 2 of the tenant's template; this worker's view reads it a moment
    later: ingest waits for it rather than render version 1."""
    rt = world
    mine = {
        "priority": "standard",
        "variables": ["name"],
        "locales": {"en": {"email": {"subject": "v2 {{ name }}", "text": "Two {{ name }}"}}},
    }
    saved = check_saved({**mine, "id": "booking-confirmation", "version": 2}, rt.templates.env)
    value = rt.codec.encode("NotificationRequest", make_request())
    checked = [(PENDING_HEADER, b"1"), (TEMPLATE_VERSION_HEADER, b"2")]
    from_door = Ev(Msg(7, topic="herald.notifications.requests", key=b"acme:u-1", value=value,
                       headers=checked))  # fmt: skip
    asyncio.get_running_loop().call_later(0.1, rt.templates.store, "acme", saved)
    await run(ingest, rt, [[from_door]])
    [dispatch] = rt.sinks.dispatch[("email", "urgent")].values()
    assert (dispatch["text"], dispatch["templateVersion"]) == ("Two Ana", 2)


async def test_a_fallback_channel_shows_the_profiles_attributes_too(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    """The next channel is rendered in the send stage: it reads the profile's attributes
    from the profiles table, so a gold member's SMS says gold like the WhatsApp did."""
    rt = world
    text = "{{ name }}{% if user.tier == 'gold' %}, gold member{% endif %}"
    mine = {"priority": "standard", "variables": ["name"],
            "locales": {"en": {"whatsapp": {"text": text}, "sms": {"text": text}}}}  # fmt: skip
    rt.templates.store("acme", check_saved({**mine, "id": "greet", "version": 2}, rt.templates.env))
    rt.tables.profiles["acme:u-1"] = {"tenant": "acme", "userId": "u-1", "attributes":
                                      {"tier": "gold"}}  # fmt: skip
    request = make_request(template="greet", data={"name": "Ana"}, recipient={
        "userId": "u-1", "phone": "+34600000001", "whatsapp": "+34600000001"})  # fmt: skip
    original = rt.codec.encode("NotificationRequest", request)
    first = render_dispatch(request, "whatsapp", templates=rt.templates, remaining=["sms"],
                            original=original, user={"tier": "gold"})  # fmt: skip
    nxt = render_next(rt, first, ["sms"], [])
    assert nxt is not None and nxt.channel == "sms"
    assert (first["text"], nxt.dispatch["text"]) == ("Ana, gold member", "Ana, gold member")
