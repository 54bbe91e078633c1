"""SendGrid v3 Mail Send, simulated: `POST /v3/mail/send` with a Bearer API key.

Answers 202 with `X-Message-Id`; errors are `{"errors": [{"message", "field"}]}`.
Faults: `5xx` is 500, `429` is 429 with the `X-RateLimit-*` headers (and
Retry-After). Checks what SendGrid checks that matters to Herald: at most
1000 personalizations, no address twice, valid addresses (one at
`invalid.test` is not), a sender, content or a template. Legacy
`substitutions` are applied per personalization, so each batched recipient
is recorded with its own content.

No idempotency key (SendGrid has none): a repeated request is recorded again.
Each recipient's record shows its headers (the message's, then its
personalization's), so a test sees the Message-ID a resend shares.

Webhook: one signed array per recipient, `processed`, `delivered`, `open` (or
`processed`, `bounce` for an address at `bounce.test`), each event carrying
the custom args at top level, as SendGrid does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from pipeline.http.webhooks import sendgrid as webhook
from pipeline.simulator.state import FaultKind, Post, SimProvider, SimulatorState
from pipeline.simulator.wire import (
    bearer,
    json_response,
    state_of,
    take_fault,
    webhook_headers,
)

__all__ = ["MAX_PERSONALIZATIONS", "NAME", "SIM", "mail_send"]

NAME = "sendgrid"
MAX_PERSONALIZATIONS = 1000


def _errors(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_response({"errors": [{"message": message, "field": None}]}, status, headers)


async def mail_send(request: web.Request) -> web.Response:
    state = state_of(request)
    if bearer(request) != state.settings.sendgrid_api_key:
        return _errors(401, "The provided authorization grant is invalid, expired, or revoked")
    raw = await request.read()
    try:
        body = orjson.loads(raw)
        first_to = body["personalizations"][0]["to"][0]["email"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        body, first_to = None, None
    failure = await take_fault(request, NAME, first_to)
    if failure is not None and failure.kind is FaultKind.SERVER_ERROR:
        return _errors(500, "internal error")
    if failure is not None and failure.kind is FaultKind.RATE_LIMITED:
        reset = str(int(time.time()) + failure.retry_after)
        return _errors(
            429, "too many requests",
            {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
             "X-RateLimit-Reset": reset, "Retry-After": str(failure.retry_after)},
        )  # fmt: skip
    if body is None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _errors(400, "Bad Request")
    errors = _problems(body)
    if errors:
        return json_response({"errors": errors}, 400)
    batch_id = secrets.token_urlsafe(16)[:22]
    for i, personalization in enumerate(body["personalizations"]):
        custom_args = {
            **_dict(body.get("custom_args")),
            **_dict(personalization.get("custom_args")),
        }
        substitutions = _dict(personalization.get("substitutions"))
        content = [
            {**part, "value": _substitute(str(part.get("value", "")), substitutions)}
            for part in body.get("content") or []
        ]
        for j, to in enumerate(personalization["to"]):
            state.record(
                NAME,
                "email",
                to["email"],
                {
                    "subject": personalization.get("subject", body.get("subject")),
                    "content": content,
                    "from": body["from"],
                    "customArgs": personalization.get("custom_args", {}),
                    "headers": {
                        **_dict(body.get("headers")),
                        **_dict(personalization.get("headers")),
                    },
                    "batchId": batch_id,
                },
                batch_id,
            )
            sg_message_id = f"{batch_id}.filterdrecv-sim-{i}-{j}.0"
            state.later(_events(state, to["email"], sg_message_id, custom_args))
    return web.Response(status=202, headers={"X-Message-Id": batch_id})


def _events(
    state: SimulatorState, email: str, sg_message_id: str, custom_args: Mapping[str, Any]
) -> Post:
    async def post() -> None:
        ts = int(time.time())
        base = {"email": email, "timestamp": ts, "sg_message_id": sg_message_id,
                "smtp-id": f"<{sg_message_id.split('.')[0]}@sim.sendgrid.test>",
                "category": [], **custom_args}  # fmt: skip
        kinds: list[dict[str, Any]] = [{"event": "processed"}]
        if email.lower().endswith("@bounce.test"):
            kinds.append({"event": "bounce", "type": "bounce", "status": "5.1.1",
                          "reason": "550 5.1.1 The email account that you tried to reach "
                                    "does not exist.",
                          "bounce_classification": "Invalid Address"})  # fmt: skip
        else:
            kinds.append({"event": "delivered", "response": "250 2.0.0 OK"})
            kinds.append({"event": "open", "useragent": "Mozilla/5.0", "ip": "192.0.2.1",
                          "sg_machine_open": False})  # fmt: skip
        events = [{**base, **kind, "sg_event_id": secrets.token_urlsafe(16)} for kind in kinds]
        body = orjson.dumps(events)
        timestamp = str(int(time.time()))
        settings = state.settings
        signature = webhook.sign(settings.sim_sendgrid_webhook_private_key, timestamp, body)
        headers = {webhook.SIGNATURE: signature, webhook.TIMESTAMP: timestamp}
        await state.post(
            f"{settings.sim_webhook_url}/webhooks/sendgrid", body,
            webhook_headers(headers, "application/json"),
        )  # fmt: skip

    return post


def _substitute(text: str, substitutions: dict[str, Any]) -> str:
    """SendGrid's legacy substitutions: each tag replaced by the personalization's value."""
    for tag, value in substitutions.items():
        text = text.replace(str(tag), str(value))
    return text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _problems(body: Any) -> list[dict[str, Any]]:
    """The checks SendGrid makes that matter to Herald, with its error shape."""
    errors: list[dict[str, Any]] = []
    if not isinstance(body, dict):
        return [{"message": "Bad Request", "field": None}]
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append({"message": "The personalizations field is required and must have at "
                       "least one personalization.", "field": "personalizations"})  # fmt: skip
        personalizations = []
    if len(personalizations) > MAX_PERSONALIZATIONS:
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


SIM = SimProvider(names=(NAME,), routes=(web.post("/v3/mail/send", mail_send),))
