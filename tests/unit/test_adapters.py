"""Provider adapters: every classification, and each adapter end to end against the simulator."""

from __future__ import annotations

import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import pipeline.providers as providers
from pipeline.exceptions import (
    ConfigError,
    DeliveryError,
    InvalidData,
    ProviderAuthError,
    ProviderTimeout,
    RateLimited,
    RecipientUnreachable,
    TransientError,
)
from pipeline.providers import (
    Fcm,
    Message,
    SendGrid,
    ServiceAccountToken,
    Smtp,
    StaticToken,
    TwilioSms,
    TwilioWhatsApp,
    Vonage,
    WhatsAppCloud,
    WhatsAppTemplate,
    build_providers,
    fcm,
    smtp,
    twilio,
    vonage,
    whatsapp,
)
from pipeline.providers.transport import retry_after
from pipeline.settings import Settings

from .simkit import Sim, simulator

pytestmark = pytest.mark.unit

T, U, BAD, A = TransientError, RecipientUnreachable, InvalidData, ProviderAuthError
R, TO = RateLimited, ProviderTimeout  # the retry policy's rate-limit and timeout classes


def msg(channel: str, to: str, **kw: Any) -> Message:
    return Message(
        message_id=kw.pop("message_id", "msg-1"),
        tenant=kw.pop("tenant", "acme"),
        channel=channel,
        to=to,
        text=kw.pop("text", "Your flight IB123 departs at 10:40"),
        **kw,
    )


# Classification tables: every answer providers.md lists, by the provider's own code.


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 20429, R),
        (400, 21211, U),
        (400, 21614, U),
        (400, 21612, U),
        (400, 21635, U),
        (400, 21610, U),
        (400, 21608, U),
        (401, 20003, A),
        (500, 20500, T),
        (503, None, T),
        (429, None, R),
        (400, 21602, BAD),  # body required: our content
        (400, 21617, BAD),  # body too long
        (404, 20404, BAD),
        (403, None, A),
        (400, 63003, U),  # WhatsApp: not a WhatsApp user
        (400, 63016, U),  # WhatsApp: outside the 24 h window
        (400, 63024, U),  # WhatsApp: invalid recipient
        (429, 63018, R),  # WhatsApp: channel rate limit
    ],
)
def test_twilio_classification(status: int, code: int | None, expected: type) -> None:
    body = {"code": code, "message": "m", "status": status} if code else {}
    error = twilio.classify(status, body, {})
    assert type(error) is expected
    assert error.code == str(code or status) and error.provider == "twilio"


def test_twilio_rate_limit_carries_retry_after() -> None:
    error = twilio.classify(429, {"code": 20429}, {"Retry-After": "3"}, provider="twilio-whatsapp")
    assert isinstance(error, TransientError) and error.retry_after == 3.0
    assert error.provider == "twilio-whatsapp"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("1", R), ("5", T), ("10", T), ("2", BAD), ("3", BAD), ("6", BAD), ("12", BAD), ("4", A),
     ("8", A), ("9", A), ("7", U), ("29", U), ("33", U)],
)  # fmt: skip
def test_vonage_classification(status: str, expected: type) -> None:
    body = {"message-count": "1", "messages": [{"status": status, "error-text": "x"}]}
    error = vonage.classify(200, body, {"Retry-After": "2"})
    assert type(error) is expected and error is not None and error.code == status
    if expected is T:
        assert error.retry_after == 2.0


def test_vonage_success_and_http_level_answers() -> None:
    ok = {"message-count": "1", "messages": [{"status": "0", "message-id": "0A1"}]}
    assert vonage.classify(200, ok) is None
    assert isinstance(vonage.classify(500, {}), TransientError)
    assert isinstance(vonage.classify(429, {}), TransientError)
    assert isinstance(vonage.classify(401, {}), ProviderAuthError)
    bare = vonage.classify(200, {"status": "4", "error-text": "Bad Credentials"})
    assert isinstance(bare, ProviderAuthError) and bare.code == "4"
    second_part_failed = {"messages": [{"status": "0"}, {"status": "1"}]}
    assert isinstance(vonage.classify(200, second_part_failed), TransientError)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 130429, R),
        (400, 131056, R),
        (400, 4, R),
        (400, 80007, R),
        (400, 131026, U),
        (400, 131047, U),
        (400, 131049, U),
        (401, 0, A),
        (401, 190, A),
        (500, 131000, T),
        (503, 133004, T),
        (400, 100, BAD),
        (500, 100, BAD),  # keyed on the code, not the status
        (400, 132001, BAD),  # template does not exist
        (500, 1, T),
        (502, None, T),
    ],
)
def test_whatsapp_classification(status: int, code: int | None, expected: type) -> None:
    body = (
        {"error": {"message": "m", "type": "OAuthException", "code": code}}
        if code is not None
        else {}
    )
    error = whatsapp.classify(status, body, {})
    assert type(error) is expected
    assert error.code == str(code if code is not None else status)


def test_whatsapp_window_errors_say_what_to_do() -> None:
    window = whatsapp.classify(400, {"error": {"code": 131047}})
    assert "template" in str(window)
    cap = whatsapp.classify(400, {"error": {"code": 131049}})
    assert "24 h" in str(cap)
    limited = whatsapp.classify(400, {"error": {"code": 130429}}, {"Retry-After": "9"})
    assert limited.retry_after == 9.0


def fcm_error(status: int, canonical: str, code: str | None) -> dict[str, Any]:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]
    return {"error": {"code": status, "message": "m", "status": canonical,
                      **({"details": details} if code else {})}}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "canonical", "code", "expected"),
    [
        (404, "NOT_FOUND", "UNREGISTERED", U),
        (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", BAD),
        (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", A),
        (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", A),
        (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", R),
        (503, "UNAVAILABLE", "UNAVAILABLE", T),
        (500, "INTERNAL", "INTERNAL", T),
        (401, "UNAUTHENTICATED", None, A),  # our OAuth token rejected
        (400, "INVALID_ARGUMENT", None, BAD),
        (404, "NOT_FOUND", None, BAD),  # no FcmError detail: not the token's fault
    ],
)
def test_fcm_classification(status: int, canonical: str, code: str | None, expected: type) -> None:
    error = fcm.classify(status, fcm_error(status, canonical, code), {})
    assert type(error) is expected and error.code == (code or canonical)


@pytest.mark.parametrize("code", ["QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"])
def test_fcm_backoff_errors_carry_retry_after(code: str) -> None:
    error = fcm.classify(503, fcm_error(503, "UNAVAILABLE", code), {"Retry-After": "7"})
    assert isinstance(error, TransientError) and error.retry_after == 7.0


@pytest.mark.parametrize(
    ("code", "stage", "expected"),
    [
        (421, "connect", T),
        (450, "rcpt", T),
        (451, "data", T),
        (452, "rcpt", T),
        (455, "mail", T),
        (552, "rcpt", T),  # too many recipients: like 452
        (552, "data", BAD),  # message too big
        (550, "rcpt", U),
        (551, "rcpt", U),
        (553, "rcpt", U),
        (550, "mail", BAD),
        (553, "mail", BAD),
        (554, "data", BAD),
        (500, "mail", BAD),
        (501, "rcpt", BAD),
        (535, "auth", A),
        (534, "auth", A),
        (530, "mail", A),
        (454, "auth", T),  # temporary authentication failure
    ],
)
def test_smtp_classification(code: int, stage: str, expected: type) -> None:
    error = smtp.classify(code, "5.1.1 text", stage)
    assert type(error) is expected and error.code == str(code) and error.provider == "smtp"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after({"Retry-After": "12"}) == 12.0
    assert retry_after({}) is None and retry_after(None) is None
    assert retry_after({"Retry-After": "soon"}) is None
    later = retry_after({"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    assert later is not None and 25 <= later <= 31


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


# End to end against the simulator.


async def expect(error: type[DeliveryError], call: Any, code: str | None = None) -> DeliveryError:
    with pytest.raises(error) as caught:
        await call
    assert type(caught.value) is error, repr(caught.value)
    if code is not None:
        assert caught.value.code == code, repr(caught.value)
    return caught.value


def twilio_sms(sim: Sim, **kw: Any) -> TwilioSms:
    s = sim.settings
    args: dict[str, Any] = {"base_url": s.twilio_base_url, "account_sid": s.twilio_account_sid,
                            "auth_token": s.twilio_auth_token, "from_number": s.twilio_from,
                            "public_url": "https://herald.example.com", **kw}  # fmt: skip
    return TwilioSms(sim.session, **args)


def twilio_whatsapp(sim: Sim, **kw: Any) -> TwilioWhatsApp:
    s = sim.settings
    args: dict[str, Any] = {"base_url": s.twilio_base_url, "account_sid": s.twilio_account_sid,
                            "auth_token": s.twilio_auth_token,
                            "from_number": s.twilio_whatsapp_from,
                            "public_url": "https://herald.example.com", **kw}  # fmt: skip
    return TwilioWhatsApp(sim.session, **args)


def vonage_sms(sim: Sim, **kw: Any) -> Vonage:
    s = sim.settings
    args: dict[str, Any] = {"base_url": s.vonage_base_url, "api_key": s.vonage_api_key,
                            "api_secret": s.vonage_api_secret, "from_": s.vonage_from,
                            "public_url": "https://herald.example.com", **kw}  # fmt: skip
    return Vonage(sim.session, **args)


def whatsapp_cloud(sim: Sim, **kw: Any) -> WhatsAppCloud:
    s = sim.settings
    args: dict[str, Any] = {"base_url": s.whatsapp_base_url,
                            "phone_number_id": s.whatsapp_phone_number_id,
                            "token": s.whatsapp_token, **kw}  # fmt: skip
    return WhatsAppCloud(sim.session, **args)


def fcm_push(sim: Sim, token: Any = None, **kw: Any) -> Fcm:
    s = sim.settings
    provider = token or StaticToken(s.fcm_access_token)
    return Fcm(sim.session, base_url=s.fcm_base_url, project_id=s.fcm_project_id,
               token_provider=provider, **kw)  # fmt: skip


def smtp_relay(sim: Sim, **kw: Any) -> Smtp:
    args: dict[str, Any] = {"host": "127.0.0.1", "port": sim.smtp_port,
                            "from_email": "notifications@herald.test", "from_name": "Herald",
                            **kw}  # fmt: skip
    return Smtp(**args)


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


async def test_whatsapp_cloud_text_and_template() -> None:
    async with simulator() as sim:
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
    async with simulator() as sim:
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


async def test_fcm_push_is_accepted_with_the_join_keys_in_data() -> None:
    async with simulator() as sim:
        accepted = await fcm_push(sim).send(
            msg("push", "device-token-1", subject="Gate change", message_id="m-p")
        )
        assert accepted.provider_message_id.startswith("projects/herald-sim/messages/")
        [sent] = sim.recorded("fcm")
        assert sent["to"] == "device-token-1" and sent["channel"] == "push"
        assert sent["content"]["data"] == {"messageId": "m-p", "tenant": "acme"}
        assert sent["content"]["notification"]["title"] == "Gate change"


async def test_fcm_rejections() -> None:
    async with simulator() as sim:
        adapter = fcm_push(sim)
        await expect(
            RecipientUnreachable, adapter.send(msg("push", "unregistered-abc")), "UNREGISTERED"
        )
        await expect(InvalidData, adapter.send(msg("push", "invalid-abc")), "INVALID_ARGUMENT")
        big = msg("push", "device-token-1", text="x" * 5000)
        await expect(InvalidData, adapter.send(big), "payload-too-large")
        await expect(
            ProviderAuthError,
            fcm_push(sim, StaticToken("nope")).send(msg("push", "t")),
            "UNAUTHENTICATED",
        )
        assert sim.recorded() == []


@pytest.mark.parametrize(
    ("fail", "code", "retry"),
    [("429", "QUOTA_EXCEEDED", 1.0), ("5xx", "INTERNAL", None), ("down", "503", None)],
)
async def test_fcm_faults(fail: str, code: str, retry: float | None) -> None:
    async with simulator() as sim:
        await sim.fault("fcm", fail=fail)
        kind = RateLimited if fail == "429" else TransientError
        error = await expect(kind, fcm_push(sim).send(msg("push", "t-1")), code)
        assert error.retry_after == retry


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


# FCM service-account tokens (OAuth2 JWT bearer against the simulator's /token).


def service_account(path: Path, token_uri: str, key: rsa.RSAPrivateKey | None = None) -> Path:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    path.write_bytes(orjson.dumps({
        "type": "service_account", "project_id": "herald-sim", "private_key_id": "k1",
        "private_key": pem, "client_email": "herald@herald-sim.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }))  # fmt: skip
    return path


async def test_fcm_service_account_token_is_exchanged_cached_and_refreshed(tmp_path: Path) -> None:
    key_file = tmp_path / "sa.json"
    service_account(key_file, "placeholder")
    async with simulator(Settings(fcm_service_account_file=key_file)) as sim:
        # The token client's clock starts an hour back (assertions still valid for 30 s),
        # so moving it to the real time later is past the cached token's expiry.
        clock = [time.time() - 3570]
        tokens = ServiceAccountToken(
            key_file, f"{sim.url}/token", sim.session, clock=lambda: clock[0]
        )
        adapter = fcm_push(sim, tokens)
        await adapter.send(msg("push", "t-1"))
        await adapter.send(msg("push", "t-2"))
        assert len(sim.state.fcm_tokens) == 1  # one exchange, then the cache
        clock[0] = time.time()  # past expiry (minus the margin): a new exchange
        await adapter.send(msg("push", "t-3"))
        assert len(sim.state.fcm_tokens) == 2
        sim.state.fcm_tokens.clear()  # FCM no longer takes the cached token: refresh, once
        await adapter.send(msg("push", "t-4"))
        assert len(sim.state.fcm_tokens) == 1
        assert [m["to"] for m in sim.recorded("fcm")] == ["t-1", "t-2", "t-3", "t-4"]


async def test_fcm_service_account_with_the_wrong_key_is_an_auth_error(tmp_path: Path) -> None:
    registered = service_account(tmp_path / "sa.json", "placeholder")
    async with simulator(Settings(fcm_service_account_file=registered)) as sim:
        impostor = service_account(tmp_path / "other.json", f"{sim.url}/token")
        adapter = fcm_push(sim, ServiceAccountToken(impostor, None, sim.session))
        await expect(ProviderAuthError, adapter.send(msg("push", "t-1")), "oauth")
        assert sim.recorded() == [] and sim.state.fcm_tokens == {}


async def test_build_providers_uses_the_service_account_file(tmp_path: Path) -> None:
    key_file = tmp_path / "sa.json"
    async with simulator() as sim:
        service_account(key_file, f"{sim.url}/token")
        settings = sim.settings.with_(fcm_service_account_file=key_file)
        [push] = build_providers(settings, sim.session)["push"]
        assert isinstance(push, Fcm) and isinstance(push.token_provider, ServiceAccountToken)
        await push.send(msg("push", "t-1"))  # simulator without the file: claims checked only
        assert len(sim.state.fcm_tokens) == 1


# SMTP against the aiosmtpd sink.


async def test_smtp_sends_a_mime_message_with_the_herald_headers() -> None:
    async with simulator(smtp=True) as sim:
        message = msg(
            "email",
            "ana@example.com",
            subject="Reserva ABC123",
            html="<p>Hola</p>",
            text="Hola Ana",
            message_id="m-s",
            headers={"List-Unsubscribe": "<https://u>"},
        )
        accepted = await smtp_relay(sim).send(message)
        [sent] = sim.recorded("smtp")
        assert sent["channel"] == "email" and sent["to"] == "ana@example.com"
        assert sent["providerMessageId"] == accepted.provider_message_id
        assert (
            accepted.provider_message_id.startswith("<")
            and "@herald.test>" in accepted.provider_message_id
        )
        content = sent["content"]
        assert content["subject"] == "Reserva ABC123" and content["text"].strip() == "Hola Ana"
        assert content["html"].strip() == "<p>Hola</p>"
        assert content["headers"]["X-Herald-Message-Id"] == "m-s" == content["messageId"]
        assert content["headers"]["X-Herald-Tenant"] == "acme"
        assert content["headers"]["List-Unsubscribe"] == "<https://u>"
        assert content["headers"]["Message-ID"] == accepted.provider_message_id
        assert content["from"] == "Herald <notifications@herald.test>"


async def test_smtp_recipient_conventions() -> None:
    async with simulator(smtp=True) as sim:
        relay = smtp_relay(sim)
        await expect(RecipientUnreachable, relay.send(msg("email", "ana@bounce.test")), "550")
        await expect(RecipientUnreachable, relay.send(msg("email", "ana@invalid.test")), "553")
        assert sim.recorded() == []


@pytest.mark.parametrize(
    ("fail", "code"), [("5xx", "451"), ("429", "452"), ("down", "421"), ("timeout", "timeout")]
)
async def test_smtp_faults(fail: str, code: str) -> None:
    async with simulator(smtp=True) as sim:
        await sim.fault("smtp", fail=fail, times=1)
        kind = ProviderTimeout if fail == "timeout" else TransientError
        await expect(kind, smtp_relay(sim, timeout=0.5).send(msg("email", "a@example.com")), code)
        await smtp_relay(sim).send(msg("email", "a@example.com"))
        assert len(sim.recorded("smtp")) == 1


async def test_smtp_relay_down_is_transient() -> None:
    relay = Smtp(host="127.0.0.1", port=9, from_email="n@herald.test", timeout=2)
    await expect(ProviderTimeout, relay.send(msg("email", "a@example.com")), "network")


async def test_smtp_auth() -> None:
    settings = Settings(smtp_username="herald", smtp_password="s3cret", sim_webhook_delay_ms=0)
    async with simulator(settings, smtp=True) as sim:
        await smtp_relay(sim, username="herald", password="s3cret").send(
            msg("email", "a@example.com")
        )
        await expect(
            ProviderAuthError,
            smtp_relay(sim, username="herald", password="no").send(msg("email", "a@example.com")),
            "535",
        )
        await expect(ProviderAuthError, smtp_relay(sim).send(msg("email", "a@example.com")), "530")
        assert len(sim.recorded("smtp")) == 1
