"""The Vonage adapter end to end against the simulator."""

from __future__ import annotations

import pytest

from pipeline.exceptions import InvalidData, ProviderAuthError, RateLimited, TransientError

from .adapterkit import expect, msg, vonage_sms
from .simkit import simulator


async def test_vonage_is_accepted_with_client_ref_and_callback() -> None:
    async with simulator() as sim:
        accepted = await vonage_sms(sim).send(msg("sms", "+447700900123", message_id="m-9"))
        [sent] = sim.recorded("vonage")
        assert sent["providerMessageId"] == accepted.provider_message_id != ""
        assert sent["to"] == "+447700900123" and sent["content"]["clientRef"] == "acme:m-9"


async def test_vonage_rejections() -> None:
    async with simulator() as sim:
        await expect(InvalidData, vonage_sms(sim).send(msg("sms", "+9995550100")), "3")
        await expect(
            ProviderAuthError,
            vonage_sms(sim, api_secret="x").send(msg("sms", "+447700900123")),
            "4",
        )
        assert sim.recorded() == []


@pytest.mark.parametrize(("fail", "code"), [("429", "1"), ("5xx", "5"), ("down", "503")])
async def test_vonage_faults(fail: str, code: str) -> None:
    async with simulator() as sim:
        await sim.fault("vonage", fail=fail)
        kind = RateLimited if fail == "429" else TransientError
        await expect(kind, vonage_sms(sim).send(msg("sms", "+447700900123")), code)
