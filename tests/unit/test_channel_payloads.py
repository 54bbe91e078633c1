"""What push and WhatsApp carry beyond the text: push data into FCM's `message.data`, the
approved WhatsApp template (name, language, parameter values) into a `type: template`
body, from the rendered request through the dispatch to the simulator."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.devstack.secrets import webhook_secrets
from pipeline.domain.channel_limits import check_channel_content
from pipeline.domain.planning import render_dispatch
from pipeline.domain.templates import Rendered, TemplateCatalog
from pipeline.exceptions import ContentOverLimit, InvalidData
from pipeline.kafka.codecs import AvroCodec
from pipeline.providers import WhatsAppTemplate
from pipeline.providers.delivery import message_for
from pipeline.providers.whatsapp import WhatsAppCloud
from pipeline.settings import Settings
from pipeline.simulator.whatsapp_cloud import RE_ENGAGEMENT

from .adapterkit import expect, fcm_push, msg, whatsapp_cloud
from .simkit import receiver, simulator

SECRETS = Settings.from_env(webhook_secrets())  # the webhook receivers on
GATE = {"name": "Ana", "flight": "IB3456", "oldGate": "A3", "newGate": "B12"}


def gate_change(templates: TemplateCatalog, make_request: Any, channel: str) -> dict[str, Any]:
    request = make_request(
        template="gate-change", priority="high", data=dict(GATE),
        recipient={"whatsapp": "+34600111222", "pushTokens": ["tok-1"], "locale": "es-MX",
                   "email": "ana@example.com"},
    )  # fmt: skip
    return render_dispatch(request, channel, templates=templates, remaining=[], original=b"")


def test_a_whatsapp_dispatch_carries_its_approved_template_rendered_at_ingest(
    templates: TemplateCatalog, make_request: Any, codec: AvroCodec
) -> None:
    dispatch = gate_change(templates, make_request, "whatsapp")
    assert dispatch["whatsappTemplate"] == {
        "name": "gate_change", "language": "es", "parameters": ["Ana", "IB3456", "B12", "A3"],
    }  # fmt: skip
    assert dispatch["pushData"] is None
    assert codec.decode("ChannelDispatch", codec.encode("ChannelDispatch", dispatch)) == dispatch
    assert message_for(dispatch).whatsapp_template is None  # inside the window: the text
    assert message_for(dispatch, as_template=True).whatsapp_template == WhatsAppTemplate(
        "gate_change", "es", ("Ana", "IB3456", "B12", "A3")
    )


def test_a_push_dispatch_carries_its_data_and_other_channels_neither(
    templates: TemplateCatalog, make_request: Any, codec: AvroCodec
) -> None:
    push = gate_change(templates, make_request, "push")
    assert push["pushData"] == {"type": "gate-change", "flight": "IB3456", "gate": "B12"}
    assert push["whatsappTemplate"] is None
    assert codec.decode("ChannelDispatch", codec.encode("ChannelDispatch", push)) == push
    assert message_for(push).data == push["pushData"]
    email = gate_change(templates, make_request, "email")
    assert email["pushData"] is None and email["whatsappTemplate"] is None


def test_a_reserved_push_data_key_is_refused_where_the_request_is_rendered() -> None:
    rendered = Rendered("t", "en", "push", "hi", data={"from": "x", "google.c": "y", "ok": "z"})
    with pytest.raises(ContentOverLimit, match=r"from, google\.c"):
        check_channel_content(rendered, message_id="m-1", tenant="acme")


async def test_fcm_puts_the_push_data_in_message_data_and_ours_win() -> None:
    async with simulator() as sim:
        message = msg("push", "device-1", message_id="m-d",
                      data={"flight": "IB3456", "messageId": "forged"})  # fmt: skip
        await fcm_push(sim).send(message)
        [sent] = sim.recorded("fcm")
        assert sent["content"]["data"] == {"flight": "IB3456", "messageId": "m-d", "tenant": "acme"}


async def test_fcm_simulator_refuses_data_fcm_refuses() -> None:
    async with simulator() as sim:
        adapter = fcm_push(sim)
        for data in ({"from": "x"}, {"gcm.notification": "x"}):
            await expect(InvalidData, adapter.send(msg("push", "device-1", data=data)))
        headers = {"Authorization": f"Bearer {sim.settings.fcm_access_token}"}
        path = f"/v1/projects/{sim.settings.fcm_project_id}/messages:send"
        body = {"message": {"token": "device-1", "data": {"n": 1}}}
        async with sim.session.post(sim.url + path, json=body, headers=headers) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["status"] == (
                "INVALID_ARGUMENT"
            )
        assert sim.recorded() == []


async def test_a_template_goes_to_a_user_who_never_wrote_and_is_recorded_as_approved() -> None:
    async with simulator() as sim:
        template = WhatsAppTemplate("gate_change", "es", ("Ana", "IB3456", "B12", "A3"))
        await whatsapp_cloud(sim).send(msg("whatsapp", "+34600222333", whatsapp_template=template))
        [sent] = sim.recorded("whatsapp-cloud")
        assert sent["content"]["type"] == "template"
        assert sent["content"]["approved"] == {
            "name": "gate_change", "language": "es", "parameters": ["Ana", "IB3456", "B12", "A3"],
        }  # fmt: skip


async def test_text_to_a_user_who_never_wrote_fails_by_webhook_with_131047() -> None:
    """As Meta does: the call is accepted, then the `failed` status says 131047."""
    async with receiver(SECRETS) as rec:
        settings = rec.settings.with_(sim_webhook_base_url=rec.url, sim_webhook_delay_ms=0)
        async with simulator(settings) as sim:
            adapter: WhatsAppCloud = whatsapp_cloud(sim)
            accepted = await adapter.send(msg("whatsapp", "+34600222444", message_id="m-x"))
            assert accepted.provider_message_id.startswith("wamid.")
            assert sim.recorded() == []  # the user never got it
            [event] = await rec.wait_until(lambda r: len(r.events) == 1)
            assert event["event"] == "FAILED" and event["messageId"] == "m-x"
            assert event["reason"] == f"131047 {RE_ENGAGEMENT['title']}"


async def test_after_the_user_writes_text_goes_and_the_webhook_reaches_the_pipeline() -> None:
    async with receiver(SECRETS) as rec:
        settings = rec.settings.with_(sim_webhook_base_url=rec.url, sim_webhook_delay_ms=0)
        async with simulator(settings) as sim:
            inbound = f"{sim.url}/_sim/whatsapp/inbound"
            async with sim.session.post(inbound, json={"from": "+34600222555"}) as resp:
                answer = await resp.json()
                assert resp.status == 200 and answer["webhookStatus"] == 200  # verified
            await whatsapp_cloud(sim).send(msg("whatsapp", "+34600222555"))
            [sent] = sim.recorded("whatsapp-cloud")
            assert sent["content"]["type"] == "text"
            old = {"from": "+34600222666", "ageSeconds": 24 * 3600 + 1}  # wrote too long ago
            async with sim.session.post(inbound, json=old) as resp:
                assert resp.status == 200
            await whatsapp_cloud(sim).send(msg("whatsapp", "+34600222666"))
            assert len(sim.recorded("whatsapp-cloud")) == 1
            async with sim.session.post(inbound, json={"from": "x"}) as resp:
                assert resp.status == 400
