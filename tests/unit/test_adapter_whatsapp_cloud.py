"""The WhatsApp Cloud API adapter end to end against the simulator."""

from __future__ import annotations

import pytest

from pipeline.exceptions import (
    InvalidData,
    ProviderAuthError,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)
from pipeline.providers import WhatsAppTemplate

from .adapterkit import expect, msg, whatsapp_cloud
from .simkit import simulator


async def test_whatsapp_cloud_text_and_template() -> None:
    async with simulator(whatsapp_wrote=["+34600111222"]) as sim:
        adapter = whatsapp_cloud(sim)
        text = await adapter.send(msg("whatsapp", "+34600111222", message_id="m-t"))
        template = WhatsAppTemplate("flight_delay", "es", ("Ana", "IB123"))
        templated = await adapter.send(
            msg("whatsapp", "+34600111222", message_id="m-p", whatsapp_template=template)
        )
        assert text.provider_message_id.startswith("wamid.")
        first, second = sim.recorded("whatsapp-cloud")
        assert first["to"] == "+34600111222" and first["content"]["type"] == "text"
        assert first["content"]["text"]["body"] == "Your flight IB123 departs at 10:40"
        assert first["content"]["bizOpaqueCallbackData"] == "acme:m-t"
        assert second["providerMessageId"] == templated.provider_message_id
        assert second["content"]["template"] == {
            "name": "flight_delay",
            "language": {"code": "es"},
            "components": [{"type": "body", "parameters": [
                {"type": "text", "text": "Ana"}, {"type": "text", "text": "IB123"}]}],
        }  # fmt: skip


async def test_whatsapp_cloud_rejections() -> None:
    async with simulator(whatsapp_wrote=["+34600111222"]) as sim:
        adapter = whatsapp_cloud(sim)
        await expect(RecipientUnreachable, adapter.send(msg("whatsapp", "+34600110000")), "131026")
        await expect(InvalidData, adapter.send(msg("whatsapp", "+9995550100")), "100")
        await expect(
            ProviderAuthError,
            whatsapp_cloud(sim, token="expired").send(msg("whatsapp", "+34600111222")),
            "190",
        )
        other_version = whatsapp_cloud(sim, api_version="v18.0")
        await other_version.send(msg("whatsapp", "+34600111222"))
        assert len(sim.recorded()) == 1


@pytest.mark.parametrize(("fail", "code"), [("429", "130429"), ("5xx", "131000"), ("down", "503")])
async def test_whatsapp_cloud_faults(fail: str, code: str) -> None:
    async with simulator() as sim:
        await sim.fault("whatsapp-cloud", fail=fail)
        kind = RateLimited if fail == "429" else TransientError
        error = await expect(kind, whatsapp_cloud(sim).send(msg("whatsapp", "+34600111222")), code)
        assert error.retry_after is None  # the Cloud API sends no Retry-After
