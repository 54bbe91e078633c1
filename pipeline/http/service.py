"""What operators and tools ask of a worker or an ingress: liveness, readiness, metrics, docs."""

from __future__ import annotations

from aiohttp import web

from pipeline.http.context import Call, Context, json_response
from pipeline.http.problems import NOT_READY

__all__ = ["docs", "healthz", "metrics", "openapi_json", "readyz"]


async def healthz(ctx: Context, call: Call) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(ctx: Context, call: Call) -> web.Response:
    """Ready once the worker has joined its group and recovered its tables (an ingress:
    once its producer is connected and its preferences view has caught up)."""
    ready = ctx.door.ready()
    ctx.door.metrics.ready.set(1 if ready else 0)
    if not ready:
        return NOT_READY.answer("not ready yet: joining, recovering or catching up")
    return json_response({"status": "ready"})


async def metrics(ctx: Context, call: Call) -> web.Response:
    return web.Response(
        body=ctx.door.metrics.render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def openapi_json(ctx: Context, call: Call) -> web.Response:
    """The OpenAPI document, generated from the route table when the app was built."""
    return web.Response(body=ctx.description, content_type="application/json")


async def docs(ctx: Context, call: Call) -> web.Response:
    """The API reference as one self-contained HTML page (no CDN: works offline)."""
    return web.Response(text=ctx.docs, content_type="text/html")
