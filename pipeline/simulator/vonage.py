"""The Vonage SMS API, simulated: `POST /sms/json`, form or JSON, key and secret in the body.

Answers HTTP 200 whatever happened, as Vonage does; each part's `status` tells
("0" accepted, "2" missing parameter, "3" invalid number, "4" bad
credentials). Faults: `5xx` is status "5", `429` status "1" (throttled); a fault
with `to` applies to that number only (`+` and digits, as recorded).
Convention: a number starting 999 is invalid (status "3").

Webhook: one `delivered` receipt, signed with the signature secret, posted to
the request's `callback` parameter (else the pipeline's /webhooks/vonage).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping

import orjson
from aiohttp import web

from pipeline.http.webhooks import vonage as webhook
from pipeline.simulator.state import FaultKind, Post, SimProvider, SimulatorState
from pipeline.simulator.wire import (
    digits,
    json_response,
    state_of,
    take_fault,
    valid_msisdn,
    webhook_headers,
)

__all__ = ["NAME", "SIM", "sms"]

NAME = "vonage"


def _answer(status: str, text: str) -> web.Response:
    return json_response(
        {"message-count": "1", "messages": [{"status": status, "error-text": text}]}
    )


async def sms(request: web.Request) -> web.Response:
    state = state_of(request)
    settings = state.settings
    if request.content_type == "application/json":
        try:
            params = {k: str(v) for k, v in orjson.loads(await request.read()).items()}
        except (orjson.JSONDecodeError, AttributeError):
            return _answer("2", "Missing api_key")
    else:
        params = {k: str(v) for k, v in (await request.post()).items()}
    params = {**dict(request.query.items()), **params}
    if not params.get("api_key") or not params.get("api_secret"):
        return _answer("2", "Missing api_key")
    if (
        params["api_key"] != settings.vonage_api_key
        or params["api_secret"] != settings.vonage_api_secret
    ):
        return _answer("4", "Bad Credentials")
    number = "+" + digits(params["to"]) if params.get("to") else None  # as it is recorded
    failure = await take_fault(request, NAME, number)
    if failure is not None and failure.kind is FaultKind.SERVER_ERROR:
        return _answer("5", "Internal Error")
    if failure is not None and failure.kind is FaultKind.RATE_LIMITED:
        return _answer("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry")
    for name in ("from", "to", "text"):
        if not params.get(name):
            return _answer("2", f"Missing {name} param")
    to = digits(params["to"])
    if not valid_msisdn(to):
        return _answer("3", "Invalid to address")
    message_id = secrets.token_hex(8).upper()
    client_ref = params.get("client-ref")
    state.record(
        NAME, "sms", "+" + to,
        {"text": params["text"], "from": params["from"], "clientRef": client_ref},
        message_id,
    )  # fmt: skip
    callback = params.get("callback") or f"{settings.sim_webhook_url}/webhooks/vonage"
    state.later(_receipt(state, callback, to, message_id, params))
    return json_response(
        {"message-count": "1",
         "messages": [{"to": to, "message-id": message_id, "status": "0",
                       "remaining-balance": "10.00000000", "message-price": "0.03330000",
                       "network": "23410",
                       **({"client-ref": client_ref} if client_ref else {})}]}
    )  # fmt: skip


def _receipt(
    state: SimulatorState, url: str, to: str, message_id: str, request: Mapping[str, str]
) -> Post:
    async def post() -> None:
        settings = state.settings
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        receipt = {"msisdn": to, "to": request["from"], "network-code": "23410",
                   "messageId": message_id, "price": "0.03330000", "status": "delivered",
                   "scts": time.strftime("%y%m%d%H%M", time.gmtime()), "err-code": "0",
                   "api-key": settings.vonage_api_key, "message-timestamp": stamp,
                   "timestamp": str(int(time.time())), "nonce": str(uuid.uuid4())}  # fmt: skip
        if request.get("client-ref"):
            receipt["client-ref"] = request["client-ref"]
        receipt["sig"] = webhook.sign(settings.vonage_signature_secret, receipt)
        await state.post(url, orjson.dumps(receipt), webhook_headers({}, "application/json"))

    return post


SIM = SimProvider(names=(NAME,), routes=(web.post("/sms/json", sms),))
