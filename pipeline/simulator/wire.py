"""What the simulated HTTP providers share at the wire.

Reading credentials the way HTTP providers send them, answering JSON, and
the faults every HTTP provider renders alike: `down`, and `timeout` once it
has stalled, are a 503 from all of them. What differs (each provider's error
shape for `5xx` and `429`) stays in the provider's module.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from pipeline.simulator.state import SIM_STATE, Failure, FaultKind, SimulatorState, apply_fault

__all__ = [
    "basic",
    "bearer",
    "digits",
    "json_response",
    "state_of",
    "take_fault",
    "valid_msisdn",
    "webhook_headers",
]


def state_of(request: web.Request) -> SimulatorState:
    return request.app[SIM_STATE]


async def take_fault(request: web.Request, provider: str, to: str | None = None) -> Failure | None:
    """The `5xx` or `429` to render now; `down` and `timeout` are answered 503 here."""
    failure = await apply_fault(state_of(request), provider, to)
    if failure is not None and failure.kind in (FaultKind.DOWN, FaultKind.TIMEOUT):
        raise web.HTTPServiceUnavailable()
    return failure


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )


def bearer(request: web.Request) -> str:
    """The bearer token of `Authorization`, "" when there is none."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def basic(request: web.Request) -> tuple[str, str]:
    """HTTP Basic credentials, ("", "") when absent or malformed."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return login, password


def digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def valid_msisdn(number: str) -> bool:
    """7 to 15 digits, and not the `+999` range the simulator treats as invalid."""
    return 7 <= len(number) <= 15 and not number.startswith("999")


def webhook_headers(extra: Mapping[str, str], content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "User-Agent": "Herald-Simulator", **extra}
