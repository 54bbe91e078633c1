"""The SendGrid adapter: error classification, request body, and the wire protocol
against the provider simulator (served on loopback by aiohttp's TestServer)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pipeline.devstack.processes import free_port
from pipeline.exceptions import InvalidData, ProviderAuthError, TransientError
from pipeline.providers import Accepted, Message, SendGrid
from pipeline.providers.repeat import message_id_header
from pipeline.providers.sendgrid import classify
from pipeline.settings import Settings
from pipeline.simulator.server import build_simulator

MESSAGE = Message(
    message_id="m-1",
    tenant="acme",
    channel="email",
    to="ana@example.com",
    text="Hola Ana",
    subject="Reserva X7K2LQ confirmada",
    html="<p>Hola Ana</p>",
)


def adapter(session: Any, base_url: str, api_key: str = "sim-sendgrid-key") -> SendGrid:
    return SendGrid(
        session, base_url=base_url, api_key=api_key, from_email="n@herald.test", from_name="Herald"
    )


# -- classification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (401, ProviderAuthError),
        (403, ProviderAuthError),
        (400, InvalidData),
        (413, InvalidData),
    ],
)
def test_classify(status: int, error: type[Exception]) -> None:
    exc = classify(status, "detail text", {})
    assert type(exc) is error
    assert (exc.provider, exc.code, exc.retry_after) == ("sendgrid", str(status), None)
    assert "detail text" in str(exc)


@pytest.mark.parametrize(
    ("reset", "low", "high"),
    [
        pytest.param(lambda: str(int(time.time()) + 30), 28.0, 30.0, id="future"),
        pytest.param(lambda: str(int(time.time()) - 30), 0.0, 0.0, id="past"),
    ],
)
def test_classify_rate_limit(reset: Any, low: float, high: float) -> None:
    exc = classify(429, "too many requests", {"X-RateLimit-Reset": reset()})
    assert isinstance(exc, TransientError) and exc.code == "429"
    assert exc.retry_after is not None and low <= exc.retry_after <= high


@pytest.mark.parametrize("headers", [{}, {"X-RateLimit-Reset": "soon"}], ids=["none", "garbage"])
def test_classify_rate_limit_without_usable_reset(headers: dict[str, str]) -> None:
    exc = classify(429, "", headers)
    assert isinstance(exc, TransientError) and exc.retry_after is None


# -- request body -------------------------------------------------------------------------


def test_body() -> None:
    body = adapter(None, "http://sg.test/").body(MESSAGE)
    assert body["personalizations"] == [
        {
            "to": [{"email": "ana@example.com"}],
            "custom_args": {"messageId": "m-1", "tenant": "acme"},
            "headers": {"Message-ID": message_id_header(MESSAGE, "herald.test")},
        }
    ]
    assert body["content"] == [
        {"type": "text/plain", "value": "Hola Ana"},
        {"type": "text/html", "value": "<p>Hola Ana</p>"},
    ]
    assert body["from"] == {"email": "n@herald.test", "name": "Herald"}
    assert body["subject"] == "Reserva X7K2LQ confirmada"
    assert "headers" not in body


def test_body_text_only_with_headers() -> None:
    message = Message("m-2", "acme", "email", "a@x.test", "hi", headers={"List-Unsubscribe": "<u>"})
    body = adapter(None, "http://sg.test").body(message)
    assert body["content"] == [{"type": "text/plain", "value": "hi"}]
    assert body["headers"] == {"List-Unsubscribe": "<u>"}


# -- against the simulator ----------------------------------------------------------------


@dataclass
class Sim:
    client: TestClient
    sendgrid: SendGrid

    async def messages(self) -> list[dict[str, Any]]:
        resp = await self.client.get("/_sim/messages")
        assert resp.status == 200
        return await resp.json()  # type: ignore[no-any-return]

    async def fault(self, **fault: Any) -> int:
        return (await self.client.put("/_sim/faults/sendgrid", json=fault)).status


@asynccontextmanager
async def simulator(api_key: str = "sim-sendgrid-key") -> AsyncIterator[Sim]:
    app = build_simulator(Settings.from_env({}))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        base_url = str(client.server.make_url("/"))
        yield Sim(client, adapter(client.session, base_url, api_key))


async def test_accepted_message_is_recorded() -> None:
    async with simulator() as sim:
        accepted = await sim.sendgrid.send(MESSAGE)
        assert isinstance(accepted, Accepted) and accepted.provider == "sendgrid"
        assert accepted.provider_message_id
        [recorded] = await sim.messages()
        assert (recorded["provider"], recorded["channel"], recorded["to"]) == (
            "sendgrid",
            "email",
            "ana@example.com",
        )
        content = recorded["content"]
        assert content["batchId"] == accepted.provider_message_id
        assert content["customArgs"] == {"messageId": "m-1", "tenant": "acme"}
        assert content["subject"] == "Reserva X7K2LQ confirmada"


async def test_invalid_recipient_is_invalid_data() -> None:
    async with simulator() as sim:
        with pytest.raises(InvalidData, match="valid address") as exc:
            await sim.sendgrid.send(Message("m-1", "acme", "email", "bounce@invalid.test", "hi"))
        assert exc.value.code == "400"
        assert await sim.messages() == []


async def test_wrong_api_key_is_provider_auth_error() -> None:
    async with simulator() as sim:
        wrong = adapter(sim.client.session, str(sim.client.server.make_url("/")), "wrong-key")
        with pytest.raises(ProviderAuthError) as exc:
            await wrong.send(MESSAGE)
        assert exc.value.code == "401"
        assert await sim.messages() == []


async def test_one_5xx_then_accepted() -> None:
    async with simulator() as sim:
        assert await sim.fault(fail="5xx", times=1) == 204
        with pytest.raises(TransientError) as exc:
            await sim.sendgrid.send(MESSAGE)
        assert (exc.value.code, exc.value.retry_after) == ("500", None)
        assert (await sim.sendgrid.send(MESSAGE)).provider_message_id
        assert len(await sim.messages()) == 1


async def test_rate_limited_carries_retry_after() -> None:
    async with simulator() as sim:
        assert await sim.fault(fail="429", times=1) == 204
        with pytest.raises(TransientError) as exc:
            await sim.sendgrid.send(MESSAGE)
        assert exc.value.code == "429"
        assert exc.value.retry_after is not None and 0.0 <= exc.value.retry_after <= 1.0


async def test_down_until_faults_are_cleared() -> None:
    async with simulator() as sim:
        assert await sim.fault(fail="down") == 204
        for _ in range(2):
            with pytest.raises(TransientError, match="503"):
                await sim.sendgrid.send(MESSAGE)
        assert (await sim.client.delete("/_sim/faults")).status == 204
        assert (await sim.sendgrid.send(MESSAGE)).provider_message_id


async def test_delete_messages_empties_the_list() -> None:
    async with simulator() as sim:
        await sim.sendgrid.send(MESSAGE)
        assert len(await sim.messages()) == 1
        assert (await sim.client.delete("/_sim/messages")).status == 204
        assert await sim.messages() == []


@pytest.mark.parametrize(
    "fault",
    [{"fail": "explode"}, {"fail": "5xx", "latencyMs": "slow"}],
    ids=["unknown-kind", "bad-latency"],
)
async def test_put_invalid_fault_is_400(fault: dict[str, Any]) -> None:
    async with simulator() as sim:
        assert await sim.fault(**fault) == 400
        assert (await sim.sendgrid.send(MESSAGE)).provider_message_id  # no fault installed


async def test_put_fault_with_non_integer_times_is_400() -> None:
    async with simulator() as sim:
        assert await sim.fault(fail="5xx", times="1") == 400


async def test_connection_refused_is_transient() -> None:
    port = free_port()  # a loopback port nothing listens on
    async with simulator() as sim:
        closed = adapter(sim.client.session, f"http://127.0.0.1:{port}")
        with pytest.raises(TransientError) as exc:
            await closed.send(MESSAGE)
        assert exc.value.code == "network"


def note(i: int, to: str | None = None, html: str | None = "<p>hi</p>") -> Message:
    return Message(f"m-{i}", "acme", "email", to or f"u{i}@example.com", f"text {i}",
                   subject=f"subject {i}", html=html)  # fmt: skip


async def test_a_batch_is_one_request_with_each_recipients_own_content() -> None:
    async with simulator() as sim:
        accepted = await sim.sendgrid.send_batch([note(1), note(2, html=None), note(3)])
        recorded = {m["to"]: m for m in await sim.messages()}
        assert len(recorded) == 3
        for i in (1, 2, 3):
            mail = recorded[f"u{i}@example.com"]
            assert mail["providerMessageId"] == accepted.provider_message_id  # one call
            assert mail["content"]["subject"] == f"subject {i}"
            assert mail["content"]["content"][0]["value"] == f"text {i}"
            assert mail["content"]["customArgs"] == {"messageId": f"m-{i}", "tenant": "acme"}
        # A message without HTML gets its text, escaped, where the batch has HTML.
        assert recorded["u2@example.com"]["content"]["content"][1]["value"] == "<pre>text 2</pre>"


def test_batch_body_refuses_what_sendgrid_refuses() -> None:
    sendgrid = adapter(None, "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="same address"):
        sendgrid.batch_body([note(1, "a@example.com"), note(2, "A@example.com")])
    with pytest.raises(ValueError, match="1 to 1000"):
        sendgrid.batch_body([note(i) for i in range(1001)])
    assert not sendgrid.batchable(Message("m", "t", "email", "a@b.c", "x" * 10_001))
    assert sendgrid.batchable(note(1))
