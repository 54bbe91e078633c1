"""The simulator's own endpoints: what it received, and the fault scripts.

`GET /_sim/messages` lists the messages recorded, the newest `HERALD_SIM_MESSAGE_LOG`
(each `{seq, provider, channel, to, content, providerMessageId, at}`; `to` is the
email address, the E.164 phone number or the push token); `?after=<seq>` keeps only the newer
ones, so a reader polls with a cursor, and `?to=<recipient>` only that
recipient's. `DELETE /_sim/messages` forgets them.

`PUT /_sim/faults/{provider}` installs `{"fail": "5xx"|"429"|"timeout"|"down",
"times": N, "latencyMs": N, "retryAfter": N, "to": recipient}` for one of the
registered providers; `DELETE /_sim/faults` clears every fault.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from pipeline.exceptions import ValidationError
from pipeline.simulator.state import Fault
from pipeline.simulator.wire import json_response, state_of

__all__ = ["clear_faults", "clear_messages", "list_messages", "routes"]


async def list_messages(request: web.Request) -> web.Response:
    """Every message, or only those after `?after=<seq>` and/or to `?to=<recipient>`."""
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        return json_response({"title": "after must be an integer"}, 400)
    messages = state_of(request).messages_after(after)
    to = request.query.get("to")
    if to is not None:
        messages = [m for m in messages if m["to"] == to]
    return json_response(messages)


async def clear_messages(request: web.Request) -> web.Response:
    state_of(request).messages.clear()
    return web.Response(status=204)


async def clear_faults(request: web.Request) -> web.Response:
    state_of(request).faults.clear()
    return web.Response(status=204)


def routes(providers: tuple[str, ...]) -> tuple[web.RouteDef, ...]:
    """The inspection routes; faults may be set for `providers` only."""

    async def put_fault(request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        if provider not in providers:
            return json_response(
                {"title": "unknown provider", "detail": f"one of {providers}"}, 404
            )
        try:
            fault = Fault.from_script(orjson.loads(await request.read()))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            return json_response({"title": "invalid fault", "detail": str(exc)}, 400)
        state_of(request).faults[provider] = fault
        return web.Response(status=204)

    return (
        web.get("/_sim/messages", list_messages),
        web.delete("/_sim/messages", clear_messages),
        web.put("/_sim/faults/{provider}", put_fault),
        web.delete("/_sim/faults", clear_faults),
    )
