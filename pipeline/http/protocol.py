"""What aiohttp answers by itself, before any handler runs, as problem+json, quietly logged.

aiohttp's request parser refuses over-long request lines and headers, bad
request lines and malformed headers with a plain-text 400 and logs the
exception with a traceback; the exception's text quotes the first 100 bytes of
the offending line, so an over-long `Authorization` header would leave the
start of a credential in the log. aiohttp has no hook for these (aio-libs/aiohttp
issue 3287), so `IngressRunner` serves the application with a request handler
whose `handle_error` answers RFC 9457 problem+json and logs one line naming the
error's class, never its text.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    LineTooLong,
)
from aiohttp.web_protocol import RequestHandler

from pipeline.http.problems import PROBLEM_JSON

__all__ = ["IngressRunner", "ProblemRequestHandler", "describe_parse_error"]

log = structlog.get_logger("herald.http")


def describe_parse_error(exc: BaseException | None) -> str:
    """What was wrong with the request, in words that quote nothing the client sent."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else "the limit of"
        return f"the request line or a header is longer than {limit} bytes"
    if isinstance(exc, BadHttpMethod | BadStatusLine):
        return "not an HTTP/1.x request line"
    if isinstance(exc, InvalidHeader):
        return "a header is malformed"
    if isinstance(exc, BadHttpMessage):
        return "the request is not valid HTTP (headers, framing or encoding)"
    return "the request could not be read"


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors as problem+json."""

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 and not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)  # a fault of ours
        # One line, no traceback, nothing quoted from the request (it may hold a token).
        log.info("http.unreadable-request", status=status, error=type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already under way")
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        body = {"type": "about:blank", "title": phrase or "Bad Request", "status": status,
                "detail": describe_parse_error(exc)}  # fmt: skip
        resp = web.Response(status=status, body=orjson.dumps(body), content_type=PROBLEM_JSON)
        resp.force_close()
        return resp


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class IngressRunner(web.AppRunner):
    """`web.AppRunner` whose connections are `ProblemRequestHandler`s."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        server = _ProblemServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )
        return server
