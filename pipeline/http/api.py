"""The HTTP API (aiohttp), built from the route table, served by a worker or an ingress.

`Ingress.build` registers every route of `pipeline.http.routes` and wraps each
handler in what its declaration asks for: the JWT and its scope, the body
checked against its model. The middleware turns errors into RFC 9457
problem+json (`pipeline.http.problems`) and counts every answer per route.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

from pipeline.http import problems
from pipeline.http.auth import TokenVerifier
from pipeline.http.bodies import read_body
from pipeline.http.context import Call, Context
from pipeline.http.docs import render_docs
from pipeline.http.door import Door
from pipeline.http.openapi import describe
from pipeline.http.operation import Operation
from pipeline.http.quotas import admit, door_quotas
from pipeline.http.routes import operations

__all__ = ["Ingress"]

log = structlog.get_logger("herald.http")
_CLIENT_GONE = 499  # nginx's "client closed request": counted in the metrics, never seen
_Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Ingress:
    """The aiohttp application of one worker or ingress, over that process's `Door`."""

    def __init__(self, door: Door, verifier: TokenVerifier) -> None:
        self.door = door
        self.verifier = verifier

    def build(self) -> web.Application:
        ops = operations()
        description = describe(ops)
        ctx = Context(
            self.door, orjson.dumps(description), render_docs(description),
            door_quotas(self.door.settings),
        )  # fmt: skip
        app = web.Application(
            client_max_size=self.door.limits.http_body_bytes,  # HERALD_HTTP_MAX_BODY, capped
            middlewares=[self.errors_and_metrics],
        )
        for op in ops:
            app.router.add_route(op.method, op.path, self._endpoint(op, ctx), name=op.operation_id)
        return app

    def _endpoint(self, op: Operation, ctx: Context) -> _Endpoint:
        """The handler behind what its route declares: token and scope, then the body."""

        async def endpoint(request: web.Request) -> web.StreamResponse:
            principal = None
            if op.scope is not None:
                principal = self.verifier.verify(request.headers.get("Authorization"))
                principal.require(op.scope)
                if op.metered:  # before the body is read: a flood costs as little as possible
                    admit(ctx.quotas, principal.tenant)
            body = await read_body(request, op.body) if isinstance(op.body, type) else None
            return await op.handler(ctx, Call(request, principal, body))

        return endpoint

    @web.middleware
    async def errors_and_metrics(self, request: web.Request, handler: _Endpoint) -> Any:
        started = time.perf_counter()
        route = request.match_info.route.resource
        route_name = route.canonical if route is not None else "unmatched"
        try:
            response = await self._guarded(request, handler)
        finally:
            self.door.metrics.http_seconds.labels(route_name).observe(time.perf_counter() - started)
        self.door.metrics.http_requests.labels(route_name, str(response.status)).inc()
        return response

    async def _guarded(self, request: web.Request, handler: _Endpoint) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionError:
            # The client went away (mid-body, say): nobody to answer, nothing of ours broke.
            log.info("http.client-gone", method=request.method, path=request.path)
            return web.Response(status=_CLIENT_GONE)
        except Exception as exc:
            if isinstance(exc, web.HTTPException) and exc.status < 400:
                raise  # a redirect is an answer, not an error
            answer = problems.for_exception(exc, self.door.limits.http_body_bytes)
            if answer is None:  # a fault of ours: logged, and still a problem document
                log.exception("http.unhandled", method=request.method, path=request.path)
                answer = problems.INTERNAL.answer()
            return answer
