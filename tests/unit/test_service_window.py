"""The 24-hour WhatsApp window: the decision (pure, times either side of 24 h), the
template parameters, the inbound webhook's records and every worker's view of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from agents.calls import whatsapp_form_of
from pipeline.domain.service_window import (
    SAFETY_MARGIN,
    WhatsAppForm,
    parameter_text,
    template_parameters,
    whatsapp_form,
    window_key,
    window_open,
)
from pipeline.domain.templates import ApprovedTemplate
from pipeline.exceptions import ValidationError
from pipeline.http.webhooks.whatsapp_cloud import inbound
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.service_windows import ServiceWindowView

WROTE = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("after", "is_open"),
    [(timedelta(0), True), (DAY - SECOND, True), (DAY, False), (DAY + SECOND, False),
     (-SECOND, False)],
)  # fmt: skip
def test_the_window_is_open_for_24_hours_from_the_users_message(
    after: timedelta, is_open: bool
) -> None:
    assert window_open(WROTE, WROTE + after, margin=timedelta(0)) is is_open


def test_by_default_the_window_counts_as_closed_a_margin_early() -> None:
    closes = WROTE + DAY - SAFETY_MARGIN
    assert window_open(WROTE, closes - SECOND)
    assert not window_open(WROTE, closes)
    assert not window_open(None, WROTE)  # never wrote (or not known to have)


@pytest.mark.parametrize(
    ("has_template", "after", "form"),
    [
        (True, timedelta(hours=1), WhatsAppForm.SESSION_TEXT),
        (False, timedelta(hours=1), WhatsAppForm.SESSION_TEXT),
        (True, DAY + SECOND, WhatsAppForm.TEMPLATE),
        (False, DAY + SECOND, WhatsAppForm.NEXT_CHANNEL),
        (True, None, WhatsAppForm.TEMPLATE),
        (False, None, WhatsAppForm.NEXT_CHANNEL),
    ],
)
def test_text_inside_the_window_template_outside_next_channel_without_one(
    has_template: bool, after: timedelta | None, form: WhatsAppForm
) -> None:
    now = WROTE + (after or timedelta(0))
    last = WROTE if after is not None else None
    assert whatsapp_form(has_template=has_template, last_inbound=last, now=now) is form


def test_template_parameters_are_the_data_in_order_made_acceptable_to_whatsapp() -> None:
    approved = ApprovedTemplate("gate_change", "es", ("name", "flight", "newGate", "vip"))
    data = {"name": "Ana\nMaría", "flight": "IB\t3456", "newGate": "B      12", "vip": True}
    assert template_parameters(approved, data) == ["Ana María", "IB 3456", "B    12", "true"]
    assert parameter_text(12.5) == "12.5"


def test_window_key_is_the_business_number_and_the_users_digits() -> None:
    assert window_key("100", "+34 600-111-222") == "100:34600111222"


# The inbound webhook (signature checked before, by `parse`).


def inbound_body(*messages: dict[str, Any], phone_number_id: str = "100") -> bytes:
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": phone_number_id},
             "messages": list(messages)}  # fmt: skip
    doc = {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": value}]}]}
    return orjson.dumps(doc)


def test_each_inbound_message_is_a_window_record_its_time_never_in_the_future() -> None:
    now = 1_764_324_000.0
    body = inbound_body(
        {"from": "34600111222", "id": "wamid.a", "timestamp": str(int(now) - 60), "type": "text"},
        {"from": "34600111333", "id": "wamid.b", "timestamp": str(int(now) + 3600)},
    )
    assert inbound(body, now=now) == [
        {"phoneNumberId": "100", "number": "34600111222", "lastInboundAt": (now - 60) * 1000,
         "providerMessageId": "wamid.a"},
        {"phoneNumberId": "100", "number": "34600111333", "lastInboundAt": now * 1000,
         "providerMessageId": "wamid.b"},
    ]  # fmt: skip
    statuses_only = orjson.dumps({"object": "whatsapp_business_account", "entry": [
        {"changes": [{"value": {"statuses": [{"id": "x", "status": "sent"}]}}]}]})  # fmt: skip
    assert inbound(statuses_only, now=now) == []
    with pytest.raises(ValidationError):
        inbound(inbound_body({"from": "34600111222", "timestamp": "soon"}))


# Every worker's view.


def view_with(codec: AvroCodec, owner: str = "acme", **record: Any) -> ServiceWindowView:
    view = ServiceWindowView(codec, phone_number_id="100", owner=owner)
    view.starting({0: 1})
    doc = {"phoneNumberId": "100", "number": "34600111222", "providerMessageId": None, **record}
    view.apply(window_key("100", doc["number"]), codec.encode("WhatsAppServiceWindow", doc),
               now_ms=NOW_MS)  # fmt: skip
    view.seen(0, 0)
    return view


NOW_MS = int(WROTE.timestamp() * 1000)


def test_the_view_answers_the_owner_tenant_only(codec: AvroCodec) -> None:
    view = view_with(codec, lastInboundAt=NOW_MS - 60_000)
    assert view.last_inbound("acme", "+34600111222", NOW_MS) == WROTE - timedelta(minutes=1)
    assert view.last_inbound("beta", "+34600111222", NOW_MS) is None  # another tenant
    assert view.last_inbound("acme", "+34600999999", NOW_MS) is None  # never wrote
    unowned = view_with(codec, owner="", lastInboundAt=NOW_MS - 60_000)
    assert unowned.last_inbound("acme", "+34600111222", NOW_MS) is None


def test_the_view_forgets_closed_windows_and_knows_nothing_before_it_caught_up(
    codec: AvroCodec,
) -> None:
    view = view_with(codec, lastInboundAt=NOW_MS - 60_000)
    later = NOW_MS + int(DAY.total_seconds() * 1000)
    assert view.last_inbound("acme", "+34600111222", later) is None
    assert view.last_ms == {}  # forgotten
    stale = view_with(codec, lastInboundAt=NOW_MS - int(DAY.total_seconds() * 1000) - 1)
    assert stale.last_ms == {}  # closed before it was read: never kept
    fresh = ServiceWindowView(codec, phone_number_id="100", owner="acme")
    fresh.starting({0: 5})
    assert fresh.last_inbound("acme", "+34600111222", NOW_MS) is None


def test_the_send_stage_asks_the_view_right_before_the_call(codec: AvroCodec) -> None:
    view = view_with(codec, lastInboundAt=int(datetime.now(UTC).timestamp() * 1000) - 1000)
    rt: Any = SimpleNamespace(service_windows=view)
    approved = {"name": "gate_change", "language": "es", "parameters": ["Ana"]}
    dispatch = {"channel": "whatsapp", "tenant": "acme", "to": "+34600111222",
                "whatsappTemplate": approved}  # fmt: skip
    assert whatsapp_form_of(rt, dispatch) is WhatsAppForm.SESSION_TEXT
    assert whatsapp_form_of(rt, {**dispatch, "to": "+34600999999"}) is WhatsAppForm.TEMPLATE
    no_template = {**dispatch, "to": "+34600999999", "whatsappTemplate": None}
    assert whatsapp_form_of(rt, no_template) is WhatsAppForm.NEXT_CHANNEL
    assert whatsapp_form_of(SimpleNamespace(service_windows=None), dispatch) is (  # type: ignore[arg-type]
        WhatsAppForm.TEMPLATE
    )
    assert whatsapp_form_of(rt, {**dispatch, "channel": "sms"}) is None
