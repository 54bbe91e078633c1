"""The provider simulator at the wire: credentials, fault rendering, conventions, inspection,
the OAuth token endpoint, and starting/stopping both servers."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipeline.exceptions import ConfigError
from pipeline.settings import Settings
from pipeline.simulator.server import PROVIDERS, Simulator

from .simkit import Sim, simulator

S = Settings()
BASIC = aiohttp.encode_basic_auth(S.twilio_account_sid, S.twilio_auth_token)
TWILIO_PATH = f"/2010-04-01/Accounts/{S.twilio_account_sid}/Messages.json"
WA_PATH = f"/v21.0/{S.whatsapp_phone_number_id}/messages"
FCM_PATH = f"/v1/projects/{S.fcm_project_id}/messages:send"
WROTE = ("34600111222",)  # wrote to the business: WhatsApp text to it is accepted


def twilio_form(to: str = "+34600111222", **kw: str) -> dict[str, str]:
    return {"To": to, "From": "+15005550006", "Body": "hi", **kw}


def vonage_form(**kw: str) -> dict[str, str]:
    return {
        "api_key": S.vonage_api_key,
        "api_secret": S.vonage_api_secret,
        "from": "Herald",
        "to": "447700900123",
        "text": "hi",
        **kw,
    }


def wa_json(to: str = "34600111222", **kw: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "hi"}, **kw}


def fcm_json(token: str = "device-1") -> dict[str, Any]:
    return {"message": {"token": token, "notification": {"body": "hi"}, "data": {"k": "v"}}}


# One good request per provider: (method kwargs) builders keyed by provider.
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sendgrid": (
        "/v3/mail/send",
        {
            "json": {
                "personalizations": [{"to": [{"email": "a@example.com"}]}],
                "from": {"email": "n@herald.test"},
                "subject": "s",
                "content": [{"type": "text/plain", "value": "hi"}],
            },
            "headers": {"Authorization": f"Bearer {S.sendgrid_api_key}"},
        },
    ),
    "twilio": (TWILIO_PATH, {"data": twilio_form(), "headers": {"Authorization": BASIC}}),
    "twilio-whatsapp": (
        TWILIO_PATH,
        {
            "data": twilio_form("whatsapp:+34600111222", From="whatsapp:+14155238886"),
            "headers": {"Authorization": BASIC},
        },
    ),
    "vonage": ("/sms/json", {"data": vonage_form()}),
    "whatsapp-cloud": (
        WA_PATH,
        {"json": wa_json(), "headers": {"Authorization": f"Bearer {S.whatsapp_token}"}},
    ),
    "fcm": (
        FCM_PATH,
        {"json": fcm_json(), "headers": {"Authorization": f"Bearer {S.fcm_access_token}"}},
    ),
}


async def call(sim: Sim, provider: str, **override: Any) -> tuple[int, Any, Any]:
    path, kwargs = REQUESTS[provider]
    kwargs = {**kwargs, **override}
    async with sim.session.post(sim.url + path, **kwargs) as resp:
        json = resp.content_type == "application/json"
        body = await resp.json() if json else await resp.text()
        return resp.status, body, resp.headers


# Credentials, checked each provider's way.


@pytest.mark.parametrize(
    ("provider", "override", "status", "check"),
    [
        (
            "sendgrid",
            {"headers": {"Authorization": "Bearer wrong"}},
            401,
            lambda b: "authorization grant is invalid" in b["errors"][0]["message"],
        ),
        (
            "twilio",
            {"headers": {"Authorization": aiohttp.encode_basic_auth(S.twilio_account_sid, "x")}},
            401,
            lambda b: b["code"] == 20003 and b["status"] == 401,
        ),
        ("twilio", {"headers": {}}, 401, lambda b: b["code"] == 20003),
        (
            "vonage",
            {"data": vonage_form(api_secret="wrong")},
            200,
            lambda b: b["messages"][0]["status"] == "4",
        ),
        ("vonage", {"data": {"to": "1"}}, 200, lambda b: b["messages"][0]["status"] == "2"),
        (
            "whatsapp-cloud",
            {"headers": {"Authorization": "Bearer expired"}},
            401,
            lambda b: b["error"]["code"] == 190 and b["error"]["type"] == "OAuthException",
        ),
        (
            "fcm",
            {"headers": {"Authorization": "Bearer ya29.stale"}},
            401,
            lambda b: b["error"]["status"] == "UNAUTHENTICATED",
        ),
        ("fcm", {"headers": {}}, 401, lambda b: b["error"]["status"] == "UNAUTHENTICATED"),
    ],
)
async def test_credentials_are_checked(
    provider: str, override: dict[str, Any], status: int, check: Any
) -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        code, body, _ = await call(sim, provider, **override)
        assert code == status and check(body), body
        assert sim.recorded() == []


async def test_the_path_must_name_our_account_number_and_project() -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        other_sid = TWILIO_PATH.replace(S.twilio_account_sid, "AC" + "1" * 32)
        async with sim.session.post(
            sim.url + other_sid, data=twilio_form(), headers={"Authorization": BASIC}
        ) as resp:
            assert resp.status == 401 and (await resp.json())["code"] == 20003
        headers = {"Authorization": f"Bearer {S.whatsapp_token}"}
        async with sim.session.post(
            sim.url + "/v21.0/999/messages", json=wa_json(), headers=headers
        ) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == 100
        headers = {"Authorization": f"Bearer {S.fcm_access_token}"}
        async with sim.session.post(
            sim.url + "/v1/projects/other/messages:send", json=fcm_json(), headers=headers
        ) as resp:
            assert resp.status == 404
        assert sim.recorded() == []


async def test_a_good_request_to_every_provider_is_recorded_with_the_contract_keys() -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        for provider in REQUESTS:
            status, _, _ = await call(sim, provider)
            assert status in (200, 201, 202), provider
        async with sim.session.get(f"{sim.url}/_sim/messages") as resp:
            listed = await resp.json()
        assert [m["provider"] for m in listed] == list(REQUESTS)
        for message in listed:
            assert set(message) == {
                "seq",  # Herald's addition: a cursor for ?after=
                "provider",
                "channel",
                "to",
                "content",
                "providerMessageId",
                "at",
            }
            assert message["providerMessageId"] and message["at"].endswith("Z")
        assert [m["seq"] for m in listed] == list(range(1, len(REQUESTS) + 1))
        url = f"{sim.url}/_sim/messages"
        async with sim.session.get(url, params={"after": "4"}) as resp:
            assert [m["seq"] for m in await resp.json()] == [5, 6]
        to = listed[2]["to"]
        expected = [m["seq"] for m in listed if m["to"] == to and m["seq"] > 1]
        async with sim.session.get(url, params={"to": to, "after": "1"}) as resp:
            assert [m["seq"] for m in await resp.json()] == expected and expected
        async with sim.session.get(url, params={"after": "x"}) as resp:
            assert resp.status == 400
        assert {m["provider"]: m["channel"] for m in listed} == {
            "sendgrid": "email",
            "twilio": "sms",
            "twilio-whatsapp": "whatsapp",
            "vonage": "sms",
            "whatsapp-cloud": "whatsapp",
            "fcm": "push",
        }
        async with sim.session.delete(f"{sim.url}/_sim/messages") as resp:
            assert resp.status == 204
        assert sim.recorded() == []


async def test_whatsapp_any_api_version_and_parameter_checks() -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        headers = {"Authorization": f"Bearer {S.whatsapp_token}"}
        for version in ("v18.0", "v22.0"):
            path = f"/{version}/{S.whatsapp_phone_number_id}/messages"
            async with sim.session.post(sim.url + path, json=wa_json(), headers=headers) as resp:
                assert resp.status == 200
                assert (await resp.json())["messages"][0]["id"].startswith("wamid.")
        bad = [
            {"to": "34600111222", "type": "text", "text": {"body": "hi"}},  # no messaging_product
            wa_json(type="template", template={"name": "t"}),  # no language
            wa_json(type="image"),
        ]
        for body in bad:
            async with sim.session.post(sim.url + WA_PATH, json=body, headers=headers) as resp:
                assert resp.status == 400 and (await resp.json())["error"]["code"] == 100
        assert len(sim.recorded()) == 2


async def test_vonage_takes_json_too_and_twilio_checks_the_sender() -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        async with sim.session.post(f"{sim.url}/sms/json", json=vonage_form()) as resp:
            assert (await resp.json())["messages"][0]["status"] == "0"
        mixed = twilio_form("whatsapp:+34600111222")  # WhatsApp To, plain SMS From
        status, body, _ = await call(sim, "twilio", data=mixed)
        assert status == 400 and body["code"] == 21603
        assert [m["provider"] for m in sim.recorded()] == ["vonage"]


# Faults, rendered each provider's way.


@pytest.mark.parametrize(
    ("provider", "fail", "status", "check", "retry_after"),
    [
        ("sendgrid", "429", 429, lambda b: "errors" in b, "1"),
        ("sendgrid", "5xx", 500, lambda b: "errors" in b, None),
        ("twilio", "429", 429, lambda b: b["code"] == 20429, "1"),
        ("twilio", "5xx", 500, lambda b: b["code"] == 20500, None),
        ("twilio-whatsapp", "429", 429, lambda b: b["code"] == 20429, "1"),
        ("vonage", "429", 200, lambda b: b["messages"][0]["status"] == "1", None),
        ("vonage", "5xx", 200, lambda b: b["messages"][0]["status"] == "5", None),
        ("whatsapp-cloud", "429", 429, lambda b: b["error"]["code"] == 130429, None),
        ("whatsapp-cloud", "5xx", 500, lambda b: b["error"]["code"] == 131000, None),
        (
            "fcm",
            "429",
            429,
            lambda b: b["error"]["details"][0]["errorCode"] == "QUOTA_EXCEEDED",
            "1",
        ),
        ("fcm", "5xx", 500, lambda b: b["error"]["details"][0]["errorCode"] == "INTERNAL", None),
    ],
)
async def test_faults_are_rendered_the_providers_way(
    provider: str, fail: str, status: int, check: Any, retry_after: str | None
) -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        await sim.fault(provider, fail=fail, times=2)
        for _ in range(2):
            code, body, headers = await call(sim, provider)
            assert code == status and check(body), body
            assert headers.get("Retry-After") == retry_after
        code, _, _ = await call(sim, provider)  # times used up
        assert code in (200, 201, 202)
        assert len(sim.recorded()) == 1


@pytest.mark.parametrize("provider", list(REQUESTS))
async def test_down_is_503_and_clearing_faults_restores_service(provider: str) -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        await sim.fault(provider, fail="down")
        for _ in range(3):  # without `times`: until cleared
            assert (await call(sim, provider))[0] == 503
        async with sim.session.delete(f"{sim.url}/_sim/faults") as resp:
            assert resp.status == 204
        assert (await call(sim, provider))[0] in (200, 201, 202)


async def test_a_vonage_fault_with_to_fails_that_number_only() -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        await sim.fault("vonage", fail="5xx", to="+447700900123")
        for to, status in (("447700900123", "5"), ("447700900999", "0")):
            async with sim.session.post(f"{sim.url}/sms/json", data=vonage_form(to=to)) as resp:
                assert (await resp.json())["messages"][0]["status"] == status
        assert [m["to"] for m in sim.recorded("vonage")] == ["+447700900999"]


async def test_timeout_never_answers_and_latency_delays() -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        await sim.fault("vonage", fail="timeout", times=1)
        with pytest.raises(TimeoutError):
            await call(sim, "vonage", timeout=aiohttp.ClientTimeout(total=0.3))
        await sim.fault("vonage", latencyMs=200)
        started = time.monotonic()
        assert (await call(sim, "vonage"))[0] == 200
        assert time.monotonic() - started >= 0.2


async def test_fault_scripts_are_validated() -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        for provider in PROVIDERS:
            await sim.fault(provider, fail="5xx", times=1)
        assert set(sim.state.faults) == set(PROVIDERS)
        async with sim.session.put(f"{sim.url}/_sim/faults/pigeon", json={"fail": "5xx"}) as resp:
            assert resp.status == 404
        for bad in ({"fail": "sometimes"}, {"fail": "5xx", "times": "x"}, [1]):
            async with sim.session.put(f"{sim.url}/_sim/faults/fcm", json=bad) as resp:
                assert resp.status == 400


# Conventions at the wire.


@pytest.mark.parametrize(
    ("provider", "override", "status", "check"),
    [
        ("twilio", {"data": twilio_form("+9995550100")}, 400, lambda b: b["code"] == 21211),
        (
            "twilio-whatsapp",
            {"data": twilio_form("whatsapp:+34600110000", From="whatsapp:+14155238886")},
            400,
            lambda b: b["code"] == 63003,
        ),
        ("twilio", {"data": twilio_form("+34600110000")}, 201, lambda b: b["sid"]),  # SMS is fine
        (
            "vonage",
            {"data": vonage_form(to="9995550100")},
            200,
            lambda b: b["messages"][0]["status"] == "3",
        ),
        (
            "whatsapp-cloud",
            {"json": wa_json("34600110000")},
            400,
            lambda b: b["error"]["code"] == 131026,
        ),
        (
            "whatsapp-cloud",
            {"json": wa_json("9995550100")},
            400,
            lambda b: b["error"]["code"] == 100,
        ),
        (
            "fcm",
            {"json": fcm_json("unregistered-1")},
            404,
            lambda b: b["error"]["details"][0]["errorCode"] == "UNREGISTERED",
        ),
        (
            "fcm",
            {"json": fcm_json("invalid-1")},
            400,
            lambda b: b["error"]["details"][0]["errorCode"] == "INVALID_ARGUMENT",
        ),
    ],
)
async def test_recipient_conventions_at_the_wire(
    provider: str, override: dict[str, Any], status: int, check: Any
) -> None:
    async with simulator(whatsapp_wrote=WROTE) as sim:
        code, body, _ = await call(sim, provider, **override)
        assert code == status and check(body), body


# FCM's OAuth token endpoint.


def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def assertion(key: str, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "sa@p.iam.gserviceaccount.com",
        "aud": "https://oauth2.test/token",
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "iat": now,
        "exp": now + 3600,
        **claims,
    }
    return jwt.encode(payload, key, algorithm=alg)


async def test_oauth_token_endpoint() -> None:
    key = rsa_pem()
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    async with simulator(whatsapp_wrote=WROTE) as sim:

        async def token(form: dict[str, str]) -> tuple[int, dict[str, Any]]:
            async with sim.session.post(f"{sim.url}/token", data=form) as resp:
                return resp.status, await resp.json()

        status, body = await token({"grant_type": "password", "assertion": assertion(key)})
        assert (status, body["error"]) == (400, "unsupported_grant_type")
        for bad in (
            "garbage",
            assertion("x" * 32, alg="HS256"),
            assertion(key, exp=int(time.time()) + 7200),
            assertion(key, scope="https://www.googleapis.com/auth/drive"),
        ):
            status, body = await token({"grant_type": grant, "assertion": bad})
            assert (status, body["error"]) == (400, "invalid_grant"), body
        status, body = await token({"grant_type": grant, "assertion": assertion(key)})
        assert status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3599
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        assert (await call(sim, "fcm", headers=headers))[0] == 200


# Running both servers.


async def test_simulator_runs_http_and_smtp_and_stops() -> None:
    settings = Settings(sim_port=0, sim_smtp_port=0)
    simulator_ = Simulator(settings)
    await simulator_.start()
    port = simulator_.smtp_port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await reader.readline()).startswith(b"220 ")
    writer.close()
    await simulator_.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_smtp_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = Settings(sim_port=0, sim_smtp_port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match="HERALD_SIM_SMTP_PORT"):
            await Simulator(settings).start()
