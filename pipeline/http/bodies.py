"""Request bodies checked against their declared model, with errors a client can act on.

A body that is not JSON, or not a JSON object, is not a request at all: 400. A
JSON object that breaks the model is 422 with one `{field, message}` per problem,
the same shape the domain rules use, so a client reads both alike.
"""

from __future__ import annotations

from typing import TypeVar

import pydantic
from aiohttp import web
from pydantic_core import ErrorDetails

from pipeline.exceptions import MalformedBody, ValidationError

__all__ = ["parse_body", "read_body"]

M = TypeVar("M", bound=pydantic.BaseModel)


async def read_body(request: web.Request, model: type[M]) -> M:
    """The request's body as `model`; the size limit is the application's `client_max_size`."""
    return parse_body(model, await request.read())


def parse_body(model: type[M], raw: bytes) -> M:
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        whole = [e for e in errors if not e["loc"]]
        if whole and whole[0]["type"] == "json_invalid":
            raise MalformedBody(f"malformed JSON: {whole[0]['msg']}") from exc
        if whole:
            raise MalformedBody("the body must be a JSON object") from exc
        raise ValidationError(
            f"invalid {model.__name__}",
            [{"field": ".".join(str(p) for p in e["loc"]), "message": _message(e)} for e in errors],
        ) from exc


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required"
    return str(error["msg"])
