"""What every provider adapter shares: the interface, the exports, build_providers, and the
HTTP transport's timeouts and connection failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

import pipeline.providers as providers
from pipeline.exceptions import BatchUnsupported, ConfigError, InvalidData, ProviderTimeout
from pipeline.providers import (
    Message,
    Provider,
    SendGrid,
    SingleSendProvider,
    WhatsAppCloud,
    WhatsAppTemplate,
    build_providers,
)
from pipeline.settings import Settings

from .adapterkit import expect, fcm_push, msg, twilio_sms, vonage_sms, whatsapp_cloud
from .simkit import simulator

# Interfaces.


def test_public_exports_are_complete() -> None:
    exported = set(providers.__all__)
    assert {"Smtp", "TwilioSms", "TwilioWhatsApp", "Vonage", "WhatsAppCloud", "Fcm",
            "StaticToken", "ServiceAccountToken", "WhatsAppTemplate", "build_providers",
            "SendGrid", "Message", "Accepted", "Provider"} <= exported  # fmt: skip
    assert all(hasattr(providers, name) for name in exported)


async def test_build_providers_orders_primary_then_secondary() -> None:
    async with aiohttp.ClientSession() as session:
        built = build_providers(Settings(), session)
    names = {channel: [p.name for p in chain] for channel, chain in built.items()}
    assert names == {
        "email": ["sendgrid", "smtp"],
        "sms": ["twilio", "vonage"],
        "whatsapp": ["whatsapp-cloud", "twilio-whatsapp"],
        "push": ["fcm"],
    }
    assert all(p.channel == channel for channel, chain in built.items() for p in chain)


async def test_every_adapter_implements_the_provider_interface_with_its_batch_answer() -> None:
    async with aiohttp.ClientSession() as session:
        built = [p for chain in build_providers(Settings(), session).values() for p in chain]
        assert all(isinstance(p, Provider) for p in built)
        batching = {p.name for p in built if p.supports_batch}
        assert batching == {"sendgrid"}
        note = Message("m", "t", "email", "a@example.com", "hi")
        for provider in built:
            if provider.name in batching:
                assert provider.batchable(note)
                continue
            assert isinstance(provider, SingleSendProvider) and not provider.batchable(note)
            with pytest.raises(BatchUnsupported, match=provider.name):
                await provider.send_batch([note])


def test_an_adapter_that_forgets_a_call_cannot_be_built() -> None:
    class Half(Provider):
        name, channel, supports_batch = "half", "sms", False

        async def send(self, message: Message) -> Any:
            raise NotImplementedError

    with pytest.raises(TypeError, match="batchable"):
        Half()  # type: ignore[abstract]


def test_provider_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {"SMTP_STARTTLS": "1", "SMTP_PORT": "587", "HERALD_HTTP_PORT": "8181",
         "FCM_SERVICE_ACCOUNT_FILE": "/etc/herald/sa.json"}
    )  # fmt: skip
    assert settings.smtp_starttls is True and settings.smtp_port == 587
    assert settings.fcm_service_account_file == Path("/etc/herald/sa.json")
    assert settings.public_url == "http://127.0.0.1:8181"
    assert settings.sim_webhook_url == "http://127.0.0.1:8181"
    assert Settings.from_env({"SMTP_STARTTLS": "0"}).smtp_starttls is False
    public = Settings.from_env({"HERALD_PUBLIC_URL": "https://herald.example.com/"})
    assert public.public_url == "https://herald.example.com"
    assert len(Settings().twilio_account_sid) == 34
    with pytest.raises(ConfigError):
        Settings.from_env({"SMTP_STARTTLS": "maybe"})


def test_message_defaults_keep_old_callers_working() -> None:
    message = Message("m", "t", "email", "a@example.com", "hi")
    assert message.whatsapp_template is None and message.headers == {}
    template = WhatsAppTemplate("flight_delay", "es", ("Ana", "IB123"))
    with pytest.raises(AttributeError):
        template.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "adapter", [twilio_sms, vonage_sms, whatsapp_cloud, fcm_push], ids=lambda f: f.__name__
)
async def test_http_adapters_time_out_as_transient(adapter: Any) -> None:
    names = {twilio_sms: "twilio", vonage_sms: "vonage", whatsapp_cloud: "whatsapp-cloud",
             fcm_push: "fcm"}  # fmt: skip
    channel = {"fcm": "push", "whatsapp-cloud": "whatsapp"}.get(names[adapter], "sms")
    async with simulator() as sim:
        await sim.fault(names[adapter], fail="timeout")
        call = adapter(sim, timeout=0.3).send(msg(channel, "+34600111222"))
        await expect(ProviderTimeout, call, "timeout")


async def test_http_adapters_unreachable_provider_is_transient() -> None:
    async with aiohttp.ClientSession() as session:
        closed = "http://127.0.0.1:9"  # discard port: nothing listens
        adapter = WhatsAppCloud(session, base_url=closed, phone_number_id="1", token="t")
        await expect(ProviderTimeout, adapter.send(msg("whatsapp", "+34600111222")), "network")


async def test_sendgrid_against_the_simulator() -> None:
    async with simulator() as sim:
        s = sim.settings
        adapter = SendGrid(sim.session, base_url=s.sendgrid_base_url, api_key=s.sendgrid_api_key,
                           from_email=s.email_from)  # fmt: skip
        accepted = await adapter.send(msg("email", "ana@bounce.test", subject="Hi"))
        [sent] = sim.recorded("sendgrid")
        assert sent["providerMessageId"] == accepted.provider_message_id  # the X-Message-Id
        await expect(InvalidData, adapter.send(msg("email", "ana@invalid.test", subject="Hi")))
