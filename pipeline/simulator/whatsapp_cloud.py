"""The WhatsApp Business Cloud API, simulated: `POST /vNN.0/{phone_number_id}/messages`.

Bearer token; any API version. 200 carries `messages[0].id` (`wamid...`);
errors are `{"error": {"message", "type", "code", "error_data",
"fbtrace_id"}}`. Faults: `5xx` is 500 code 131000, `429` is 429 code 130429
(the Cloud API sends no Retry-After). Checks the parameters WhatsApp checks
(code 100): `messaging_product`, `to`, a text body of at most 4096
characters, or a template with a name and a language.

Conventions: a number ending in 0000 is not a WhatsApp user (131026); one
starting 999 is invalid (100).

The 24-hour customer-service window, as Meta enforces it: a `type: text` message to a
number that has not written in the last 24 hours (`POST /_sim/whatsapp/inbound`,
`pipeline.simulator.whatsapp_inbound`) is accepted (200, a wamid) and then fails: the
status webhook says `failed` with error 131047 "Re-engagement message", as the Cloud API
reports it; it is not listed in `/_sim/messages` (the user never got it). A `type:
template` message goes at any time; it is recorded with `template` as sent and, for the
tests, `approved`: `{name, language, parameters}` (the body parameters' texts in order).

Webhook: `sent` then `delivered` statuses, signed with the app secret,
echoing `biz_opaque_callback_data`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
from aiohttp import web

from pipeline.simulator.state import FaultKind, Post, SimProvider, SimulatorState
from pipeline.simulator.whatsapp_inbound import inbound, post_change
from pipeline.simulator.wire import (
    bearer,
    digits,
    json_response,
    state_of,
    take_fault,
    valid_msisdn,
)

__all__ = ["MAX_TEXT", "NAME", "RE_ENGAGEMENT", "SIM", "WINDOW_S", "messages"]

NAME = "whatsapp-cloud"
MAX_TEXT = 4096
WINDOW_S = 24 * 3600  # the customer-service window
# The error of a free-form message outside the window, as the failed status carries it.
RE_ENGAGEMENT = {
    "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
    "error_data": {"details": "Message failed to send because more than 24 hours have passed "
                   "since the customer last replied to this number."},
}  # fmt: skip


def _error(
    status: int, code: int, message: str, kind: str = "OAuthException", *, details: str = ""
) -> web.Response:
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": kind, "code": code,
                             "fbtrace_id": secrets.token_urlsafe(12)}  # fmt: skip
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return json_response({"error": error}, status)


async def messages(request: web.Request) -> web.Response:
    state = state_of(request)
    settings = state.settings
    if bearer(request) != settings.whatsapp_token:
        return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")
    phone_number_id = request.match_info["phone_number_id"]
    if phone_number_id != settings.whatsapp_phone_number_id:
        return _error(
            400, 100,
            f"Unsupported post request. Object with ID '{phone_number_id}' does not exist",
        )  # fmt: skip
    failure = await take_fault(request, NAME)
    if failure is not None and failure.kind is FaultKind.SERVER_ERROR:
        return _error(500, 131000, "Something went wrong")
    if failure is not None and failure.kind is FaultKind.RATE_LIMITED:
        return _error(429, 130429, "Rate limit hit")
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, 100, "Invalid parameter")
    problem = _problem(body)
    if problem:
        return _error(400, 100, f"Invalid parameter: {problem}")
    to = digits(str(body["to"]))
    if not valid_msisdn(to):
        return _error(400, 100, "Invalid parameter: recipient phone number not valid")
    if to.endswith("0000"):
        return _error(
            400, 131026, "Message undeliverable",
            details="Unable to deliver message: the recipient is not a WhatsApp user",
        )  # fmt: skip
    wamid = "wamid." + secrets.token_urlsafe(30)
    kind = body.get("type", "text")
    opaque = body.get("biz_opaque_callback_data")
    if kind == "text" and not _window_open(state, to):
        state.later(_status(state, wamid, to, opaque, "failed", errors=[RE_ENGAGEMENT]))
        return _accepted(body, to, wamid)
    content = {"type": kind, kind: body[kind], "bizOpaqueCallbackData": opaque}
    if kind == "template":
        content["approved"] = _approved(body["template"])
    state.record(NAME, "whatsapp", "+" + to, content, wamid)
    state.later(
        _status(state, wamid, to, opaque, "sent"),
        _status(state, wamid, to, opaque, "delivered"),
    )
    return _accepted(body, to, wamid)


def _accepted(body: Any, to: str, wamid: str) -> web.Response:
    return json_response(
        {"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": to}],
         "messages": [{"id": wamid, "message_status": "accepted"}]}
    )  # fmt: skip


def _window_open(state: SimulatorState, to: str) -> bool:
    """Whether `to` (digits) wrote to the business in the last 24 hours."""
    last = state.whatsapp_inbound.get(to)
    return last is not None and time.time() - last < WINDOW_S


def _approved(template: dict[str, Any]) -> dict[str, Any]:
    """What a template message asked for: name, language code and body parameters."""
    parameters = [
        str(p.get("text", "")) for c in template.get("components") or []
        if isinstance(c, dict) and c.get("type") == "body"
        for p in c.get("parameters") or [] if isinstance(p, dict)
    ]  # fmt: skip
    return {"name": template["name"], "language": template["language"]["code"],
            "parameters": parameters}  # fmt: skip


def _status(
    state: SimulatorState, wamid: str, to: str, opaque: str | None, status: str,
    errors: list[dict[str, Any]] | None = None,
) -> Post:  # fmt: skip
    async def post() -> None:
        entry: dict[str, Any] = {
            "id": wamid, "status": status, "timestamp": str(int(time.time())),
            "recipient_id": to,
            "conversation": {"id": "sim-conversation", "origin": {"type": "utility"}},
            "pricing": {"billable": True, "pricing_model": "CBP", "category": "utility"},
        }  # fmt: skip
        if opaque:
            entry["biz_opaque_callback_data"] = opaque
        if errors:
            entry["errors"] = errors
        await post_change(state, {"statuses": [entry]})

    return post


def _problem(body: Any) -> str | None:
    """What WhatsApp's parameter validation would object to, if anything."""
    if not isinstance(body, dict):
        return "body"
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product"
    if not body.get("to"):
        return "to"
    kind = body.get("type", "text")
    if kind == "text":
        text = body.get("text")
        if not isinstance(text, dict) or not text.get("body") or len(str(text["body"])) > MAX_TEXT:
            return "text.body"
        return None
    if kind == "template":
        template = body.get("template")
        if not isinstance(template, dict) or not template.get("name"):
            return "template.name"
        language = template.get("language")
        if not isinstance(language, dict) or not language.get("code"):
            return "template.language.code"
        return None
    return "type"


SIM = SimProvider(
    names=(NAME,),
    routes=(
        web.post(r"/{version:v\d+\.\d+}/{phone_number_id}/messages", messages),
        web.post("/_sim/whatsapp/inbound", inbound),
    ),
)
