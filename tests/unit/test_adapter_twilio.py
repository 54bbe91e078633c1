"""The Twilio adapters (SMS and WhatsApp) end to end against the simulator."""

from __future__ import annotations

import pytest

from pipeline.exceptions import (
    InvalidData,
    ProviderAuthError,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)

from .adapterkit import expect, msg, twilio_sms, twilio_whatsapp
from .simkit import simulator


async def test_twilio_sms_is_accepted_and_recorded_with_the_join_key_in_the_callback() -> None:
    async with simulator() as sim:
        accepted = await twilio_sms(sim).send(msg("sms", "+34600111222", message_id="m-1"))
        assert accepted.provider == "twilio" and accepted.provider_message_id.startswith("SM")
        [sent] = sim.recorded("twilio")
        assert sent["channel"] == "sms" and sent["to"] == "+34600111222"
        assert sent["providerMessageId"] == accepted.provider_message_id
        assert sent["content"]["body"] == "Your flight IB123 departs at 10:40"
        assert sent["content"]["statusCallback"] == (
            "https://herald.example.com/webhooks/twilio?tenant=acme&messageId=m-1"
        )


async def test_twilio_sms_rejections() -> None:
    async with simulator() as sim:
        await expect(RecipientUnreachable, twilio_sms(sim).send(msg("sms", "+9995550100")), "21211")
        wrong = twilio_sms(sim, auth_token="wrong")
        await expect(ProviderAuthError, wrong.send(msg("sms", "+34600111222")), "20003")
        await expect(
            InvalidData, twilio_sms(sim).send(msg("sms", "+34600111222", text="")), "21602"
        )
        assert sim.recorded() == []


@pytest.mark.parametrize(
    ("fail", "code", "retry"),
    [("429", "20429", 1.0), ("5xx", "20500", None), ("down", "503", None)],
)
async def test_twilio_faults(fail: str, code: str, retry: float | None) -> None:
    async with simulator() as sim:
        await sim.fault("twilio", fail=fail, times=1)
        kind = RateLimited if fail == "429" else TransientError
        error = await expect(kind, twilio_sms(sim).send(msg("sms", "+34600111222")), code)
        assert error.retry_after == retry
        await twilio_sms(sim).send(msg("sms", "+34600111222"))  # times=1: the next one goes
        assert len(sim.recorded("twilio")) == 1


async def test_twilio_whatsapp_is_accepted_and_unreachable_by_convention() -> None:
    async with simulator() as sim:
        adapter = twilio_whatsapp(sim)
        accepted = await adapter.send(msg("whatsapp", "+34600111222"))
        assert accepted.provider == "twilio-whatsapp"
        [sent] = sim.recorded("twilio-whatsapp")
        assert sent["channel"] == "whatsapp" and sent["to"] == "+34600111222"
        assert sent["content"]["from"] == "whatsapp:+14155238886"
        await expect(RecipientUnreachable, adapter.send(msg("whatsapp", "+34600110000")), "63003")
        await expect(RecipientUnreachable, adapter.send(msg("whatsapp", "+9995550100")), "21211")
        await sim.fault("twilio-whatsapp", fail="429")
        error = await expect(RateLimited, adapter.send(msg("whatsapp", "+34600111222")), "20429")
        assert error.retry_after == 1.0
        # The fault is per provider: SMS through Twilio still goes.
        await twilio_sms(sim).send(msg("sms", "+34600111222"))
