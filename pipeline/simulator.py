"""The provider simulator: the real providers' endpoints, on loopback, for tests and demos.

It answers the same wire protocol as the real service (so the adapters are the
production adapters), records every message it accepted, and takes fault
scripts. Inspection: `GET /_sim/messages`, `DELETE /_sim/messages`; faults:
`PUT /_sim/faults/{provider}`, `DELETE /_sim/faults`.

Implemented so far: SendGrid v3 Mail Send. Recipients at `invalid.test` are
rejected as invalid, as the contract's conventions say.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from .clock import now
from .settings import Settings

FAULTS = ("5xx", "429", "timeout", "down")


@dataclass
class Fault:
    fail: str | None = None
    times: int | None = None  # None: until cleared
    latency_ms: int = 0

    def take(self) -> str | None:
        """The failure to inject for this call, consuming one of `times`."""
        if self.fail is None:
            return None
        if self.times is None:
            return self.fail
        if self.times <= 0:
            return None
        self.times -= 1
        return self.fail


@dataclass
class SimulatorState:
    """Everything the simulator remembers; one instance per server."""

    settings: Settings
    messages: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, Fault] = field(default_factory=dict)

    def record(self, provider: str, channel: str, to: str, content: Any) -> str:
        provider_message_id = uuid.uuid4().hex
        self.messages.append(
            {
                "provider": provider,
                "channel": channel,
                "to": to,
                "content": content,
                "providerMessageId": provider_message_id,
                "at": now(),
            }
        )
        return provider_message_id


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )


async def _apply_fault(state: SimulatorState, provider: str) -> str | None:
    fault = state.faults.get(provider)
    if fault is None:
        return None
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    failure = fault.take()
    if failure == "timeout":
        await asyncio.sleep(3600)  # the client's timeout fires first
    return failure


def build_simulator(settings: Settings) -> web.Application:
    state = SimulatorState(settings)
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app["state"] = state

    async def sendgrid_mail_send(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {settings.sendgrid_api_key}":
            return _json(
                {"errors": [{"message": "The provided authorization grant is invalid, "
                             "expired, or revoked", "field": None}]},
                401,
            )  # fmt: skip
        failure = await _apply_fault(state, "sendgrid")
        if failure == "down":
            raise web.HTTPServiceUnavailable()
        if failure == "5xx":
            return _json({"errors": [{"message": "internal error", "field": None}]}, 500)
        if failure == "429":
            reset = str(int(time.time()) + 1)
            return _json(
                {"errors": [{"message": "too many requests", "field": None}]},
                429,
                {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                 "X-RateLimit-Reset": reset, "Retry-After": "1"},
            )  # fmt: skip
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json({"errors": [{"message": "Bad Request", "field": None}]}, 400)
        errors = _sendgrid_errors(body)
        if errors:
            return _json({"errors": errors}, 400)
        batch_id = uuid.uuid4().hex[:22]
        for personalization in body["personalizations"]:
            for to in personalization["to"]:
                state.record(
                    "sendgrid",
                    "email",
                    to["email"],
                    {
                        "subject": personalization.get("subject", body.get("subject")),
                        "content": body.get("content"),
                        "from": body["from"],
                        "customArgs": personalization.get("custom_args", {}),
                        "batchId": batch_id,
                    },
                )
        return web.Response(status=202, headers={"X-Message-Id": batch_id})

    async def list_messages(request: web.Request) -> web.Response:
        return _json(state.messages)

    async def clear_messages(request: web.Request) -> web.Response:
        state.messages.clear()
        return web.Response(status=204)

    async def put_fault(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        try:
            body = orjson.loads(await request.read())
            fail = body.get("fail")
            if fail is not None and fail not in FAULTS:
                raise ValueError(f"fail must be one of {FAULTS}")
            fault = Fault(fail, body.get("times"), int(body.get("latencyMs", 0)))
        except (orjson.JSONDecodeError, ValueError, AttributeError) as exc:
            return _json({"title": "invalid fault", "detail": str(exc)}, 400)
        state.faults[provider] = fault
        return web.Response(status=204)

    async def clear_faults(request: web.Request) -> web.Response:
        state.faults.clear()
        return web.Response(status=204)

    app.router.add_post("/v3/mail/send", sendgrid_mail_send)
    app.router.add_get("/_sim/messages", list_messages)
    app.router.add_delete("/_sim/messages", clear_messages)
    app.router.add_put("/_sim/faults/{provider}", put_fault)
    app.router.add_delete("/_sim/faults", clear_faults)
    return app


def _sendgrid_errors(body: Any) -> list[dict[str, Any]]:
    """The checks SendGrid makes that matter to Herald, with its error shape."""
    errors: list[dict[str, Any]] = []
    if not isinstance(body, dict):
        return [{"message": "Bad Request", "field": None}]
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append({"message": "The personalizations field is required and must have at "
                       "least one personalization.", "field": "personalizations"})  # fmt: skip
        personalizations = []
    if len(personalizations) > 1000:
        errors.append({"message": "too many personalizations", "field": "personalizations"})
    seen: set[str] = set()
    for i, p in enumerate(personalizations):
        for to in p.get("to") or []:
            email = str(to.get("email", ""))
            if "@" not in email or email.endswith("@invalid.test"):
                errors.append({"message": "Does not contain a valid address.",
                               "field": f"personalizations.{i}.to"})  # fmt: skip
            if email.lower() in seen:
                message = "Each email address in the personalization block should be unique"
                errors.append({"message": message, "field": f"personalizations.{i}.to"})
            seen.add(email.lower())
        if not p.get("to"):
            errors.append(
                {"message": "The to array is required", "field": f"personalizations.{i}.to"}
            )
    if not isinstance(body.get("from"), dict) or "@" not in str(body["from"].get("email", "")):
        errors.append({"message": "The from email does not contain a valid address.",
                       "field": "from.email"})  # fmt: skip
    if not body.get("content") and not body.get("template_id"):
        errors.append({"message": "Either content or template_id is required.", "field": "content"})
    return errors


def run_simulator(settings: Settings) -> None:
    web.run_app(
        build_simulator(settings),
        host=settings.sim_host,
        port=settings.sim_port,
        print=None,
        access_log=None,
    )
