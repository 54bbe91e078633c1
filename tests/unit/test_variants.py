"""A/B variants: the split follows the weights, each user keeps one variant everywhere."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from pipeline.domain.planning import plan_request, render_dispatch
from pipeline.domain.templates import TemplateCatalog, parse_template
from pipeline.domain.variants import Variant, assign_variant, parse_variants
from pipeline.exceptions import TemplateError
from pipeline.kafka.codecs import AvroCodec
from tests.unit.test_http_door import headers, serving

USERS = [f"user-{i}" for i in range(1000)]
NEWSLETTER = {"name": "Ana", "offer": "20% off flights to Lisbon"}


def split(variants: list[Variant], version: int = 1) -> dict[str | None, str | None]:
    return {
        u: assign_variant(variants, tenant="acme", user_id=u, template_id="t", version=version)
        for u in USERS
    }


@pytest.mark.parametrize(
    "weights",
    [{"a": 50, "b": 50}, {"a": 70, "b": 20, "c": 10}, {"control": 90, "test": 10}],
)
def test_split_follows_the_weights(weights: dict[str, int]) -> None:
    variants = [Variant(name, w) for name, w in weights.items()]
    counts = Counter(split(variants).values())
    total = sum(weights.values())
    for name, weight in weights.items():
        share = counts[name] / len(USERS)
        assert abs(share - weight / total) < 0.04, (name, share)  # 3 sigma is 4.3% at 70/30
    assert set(counts) == set(weights)


def test_assignment_is_stable_per_user() -> None:
    variants = [Variant("a", 50), Variant("b", 30), Variant("c", 20)]
    first = split(variants)
    assert split(variants) == first  # again: the same
    assert split(list(reversed(variants))) == first  # the YAML's order does not matter
    assert split([Variant("a", 50), Variant("b", 30), Variant("c", 20)]) == first  # new objects


def test_a_new_version_draws_again() -> None:
    variants = [Variant("a", 50), Variant("b", 50)]
    v1, v2 = split(variants, version=1), split(variants, version=2)
    moved = sum(v1[u] != v2[u] for u in USERS)
    assert 400 < moved < 600  # about half: an independent draw, not the same split


def test_the_tenant_is_part_of_the_key() -> None:
    variants = [Variant("a", 50), Variant("b", 50)]
    other = {
        u: assign_variant(variants, tenant="globex", user_id=u, template_id="t", version=1)
        for u in USERS
    }
    assert other != split(variants)


def test_a_zero_weight_variant_gets_nobody() -> None:
    counts = Counter(split([Variant("a", 1), Variant("off", 0)]).values())
    assert counts == {"a": len(USERS)}


def test_no_variants_no_assignment(templates: TemplateCatalog, booking: dict[str, Any]) -> None:
    assert split([]) == dict.fromkeys(USERS)
    out = templates.render("booking-confirmation", "email", booking, "en", tenant="acme",
                           user_id="u-1")  # fmt: skip
    assert out.variant is None


def test_newsletter_split_and_content(templates: TemplateCatalog) -> None:
    """The shipped newsletter: about half each, and each variant its own copy."""
    newsletter = templates.get("newsletter")
    assigned = {u: newsletter.variant_for("acme", u) for u in USERS}
    counts = Counter(assigned.values())
    assert abs(counts["a"] - 500) < 40 and counts["a"] + counts["b"] == len(USERS)
    for user in USERS[:50]:
        outs = [
            templates.render("newsletter", ch, NEWSLETTER, "en", tenant="acme", user_id=user)
            for ch in ("email", "sms", "whatsapp", "push")
        ]
        assert {o.variant for o in outs} == {assigned[user]}  # one variant on every channel
        email, _, whatsapp, push = outs
        b = assigned[user] == "b"
        assert email.subject == (
            "Ana, don't miss this: 20% off flights to Lisbon" if b
            else "Ana, our offer of the month: 20% off flights to Lisbon"
        )  # fmt: skip
        assert whatsapp.approved is not None
        assert whatsapp.approved.name == ("newsletter_limited" if b else "newsletter_monthly")
        assert push.data == {"type": "newsletter", "variant": assigned[user]}


def test_dispatches_carry_the_variant_through_fallback_and_codec(
    templates: TemplateCatalog, make_request: Any, now: datetime, codec: AvroCodec
) -> None:
    """The dispatch of the first channel, and of the next one rendered on fallback (as the
    send stage does, from the request), name the same variant; the record encodes."""
    newsletter = templates.get("newsletter")
    for user in USERS[:20]:
        request = make_request(
            template="newsletter", data=dict(NEWSLETTER), priority="marketing",
            recipient={"userId": user, "pushTokens": ["tok-1"]},
        )  # fmt: skip
        plan = plan_request(
            request, b"orig", templates=templates, preferences=None,
            available={"email", "push"}, now=now,
        )  # fmt: skip
        [(channel, _, first)] = plan.dispatches
        nxt = render_dispatch(
            request, "push", templates=templates, remaining=[], original=b"orig",
            history=[{"channel": "email"}],
        )  # fmt: skip
        expected = newsletter.variant_for("acme", user)
        assert (channel, first["variant"], nxt["variant"]) == ("email", expected, expected)
        decoded = codec.decode("ChannelDispatch", codec.encode("ChannelDispatch", first))
        assert decoded["variant"] == expected


def test_every_status_names_the_variant_pending_and_blocked_too(
    templates: TemplateCatalog, make_request: Any, now: datetime
) -> None:
    """Analytics group statuses by variant: PENDING (and BLOCKED, which renders nothing)
    name the user's variant and the template version, as the dispatch's statuses do."""
    newsletter = templates.get("newsletter")
    opted_out = {"all": {"granted": False, "source": "test", "at": "2026-11-29T10:00:00Z"}}
    for user in USERS[:10]:
        request = make_request(
            template="newsletter", data=dict(NEWSLETTER), priority="marketing",
            recipient={"userId": user, "email": f"{user}@example.com"},
        )  # fmt: skip
        expected = (newsletter.variant_for("acme", user), 1)
        for preferences, status in ((None, "PENDING"), (opted_out, "BLOCKED")):
            plan = plan_request(
                request, b"orig", templates=templates, preferences=preferences,
                available={"email"}, now=now,
            )  # fmt: skip
            [record] = plan.statuses
            assert record["status"] == status
            assert (record["variant"], record["templateVersion"]) == expected


BASE = {"en": {"sms": {"text": "hi {{ name }}"}, "push": {"subject": "s", "text": "t"}}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"a": {"weight": -1}}, "weight", id="negative-weight"),
        pytest.param({"a": {"weight": True}}, "weight", id="bool-weight"),
        pytest.param({"a": {}}, "weight", id="no-weight"),
        pytest.param({"a": {"weight": 0}}, "add up to 0", id="zero-total"),
        pytest.param([], "mapping", id="not-a-mapping"),
        pytest.param(
            {"a": {"weight": 1, "locales": {"en": {"sms": {"txt": "typo"}}}}},
            "en.sms.txt", id="unknown-part",
        ),
        pytest.param(
            {"a": {"weight": 1, "locales": {"fr": {"sms": {"text": "salut"}}}}},
            "fr.sms.text", id="unknown-locale",
        ),
    ],
)  # fmt: skip
def test_bad_variants_are_refused(spec: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_variants("t", spec, BASE)


def test_a_variant_replaces_only_its_parts() -> None:
    template = parse_template({
        "id": "t", "version": 3, "variables": ["name"], "locales": BASE,
        "variants": {"a": {"weight": 1}, "b": {"weight": 1, "locales": {
            "en": {"sms": {"text": "hey {{ name }}"}}}}},
    })  # fmt: skip
    assert template.version == 3
    assert template.parts("en", "sms", "a") == {"text": "hi {{ name }}"}
    assert template.parts("en", "sms", "b") == {"text": "hey {{ name }}"}
    assert template.parts("en", "push", "b") == {"subject": "s", "text": "t"}
    catalog = TemplateCatalog([template])
    texts = {
        catalog.render("t", "sms", {"name": "Ana"}, tenant="acme", user_id=u).text for u in USERS
    }
    assert texts == {"hi Ana", "hey Ana"}


async def test_the_doors_pending_names_the_variant() -> None:
    body = {"recipient": {"userId": "u-7", "email": "u7@example.com"}, "template": "newsletter",
            "data": NEWSLETTER, "priority": "marketing"}  # fmt: skip
    async with serving() as (client, rt):
        resp = await client.post("/v1/notifications", json=body, headers=headers())
        assert resp.status == 202, await resp.text()
    [(_, pending)] = rt.sinks.status.sent
    expected = rt.templates.get("newsletter").variant_for("acme", "u-7")
    assert (pending["status"], pending["variant"], pending["templateVersion"]) == (
        "PENDING", expected, 1,
    )  # fmt: skip
