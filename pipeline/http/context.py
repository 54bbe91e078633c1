"""What every handler is given: the door of the process serving it and the call being answered.

Handlers are plain functions `(Context, Call) -> Response`, declared in
`pipeline.http.routes`; the ingress has already authenticated the caller and
validated the body against the route's model before a handler runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from pipeline.domain.quota import TenantQuotas
from pipeline.exceptions import AuthError
from pipeline.http.auth import Principal

__all__ = ["Call", "Context", "Handler", "json_response"]

if TYPE_CHECKING:
    from pipeline.http.door import Door


@dataclass(frozen=True)
class Context:
    """The door a handler may use (`pipeline.http.door`), and the API description served as is."""

    door: Door
    description: bytes  # /openapi.json, rendered once when the app is built
    docs: str  # /docs, rendered from the same description
    quotas: TenantQuotas  # the door's per-tenant buckets (routes declared `metered`)


@dataclass(frozen=True)
class Call:
    """One request: the caller (routes with a scope) and the validated body (routes with one)."""

    request: web.Request
    principal: Principal | None = None
    body: Any = None

    @property
    def caller(self) -> Principal:
        if self.principal is None:  # a route without a scope asked for its caller
            raise AuthError("this call is not authenticated")
        return self.principal


Handler = Callable[[Context, Call], Awaitable[web.StreamResponse]]


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )
