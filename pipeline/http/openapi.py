"""The OpenAPI 3.1 description, generated from the route table and the body models.

Nothing here is written by hand per route: paths, parameters, bodies, answers,
problems and security all come from `pipeline.http.routes`, and the schemas from
the pydantic models the ingress validates with, so the description served at
`/openapi.json` is what the worker does. Pure: `describe` builds a dict.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from pipeline import __version__
from pipeline.http.operation import Answer, Operation, Param, RawBody
from pipeline.http.problems import PROBLEM_JSON, ProblemKind

__all__ = ["describe"]

_REF = "#/components/schemas/{model}"
_BEARER = "bearerAuth"


def _info() -> dict[str, Any]:
    """The document's `info` (a fresh dict each time: nothing shared at module level)."""
    return {
        "title": "Herald",
        "version": __version__,
        "summary": "Kafka-native notifications: email, SMS, WhatsApp and push.",
        "description": (
            "Every `/v1` call needs `Authorization: Bearer <JWT>` with the claims `tenant` and "
            "`scope` (space-separated); a missing scope is 403, and a tenant never sees another "
            "tenant's data (404). Errors are `application/problem+json` (RFC 9457)."
        ),
    }


def _security_scheme() -> dict[str, Any]:
    """The bearer JWT scheme every `/v1` operation names."""
    return {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256 with HERALD_JWT_SECRET, or RS256/ES256 keys from HERALD_JWKS_FILE; "
        "`exp` required. `herald token --tenant T --scope S` prints a development token.",
    }


class _Schema(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every field (the name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def describe(operations: Iterable[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these operations."""
    ops = tuple(operations)
    _, defs = models_json_schema(
        [(model, "validation") for model in _models(ops)],
        ref_template=_REF,
        schema_generator=_Schema,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": _info(),
        "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for op in ops)],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {_BEARER: _security_scheme()},
        },
    }


def _models(ops: tuple[Operation, ...]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for op in ops:
        if isinstance(op.body, type):
            found.append(op.body)
        found += [a.model for a in op.answers if a.model is not None]
        found += [kind.model for kind in op.problem_kinds]
    return list(dict.fromkeys(found))


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": _REF.format(model=model.__name__)}


def _operation(op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        doc["description"] = op.description
    if op.scope is not None:
        doc["security"] = [{_BEARER: [op.scope]}]
        doc["description"] = f"Needs the scope `{op.scope}`. {op.description}".strip()
    if op.params:
        doc["parameters"] = [_parameter(p) for p in op.params]
    if op.body is not None:
        doc["requestBody"] = _request_body(op.body)
    responses = {str(a.status): _answer(a) for a in op.answers}
    statuses = sorted({kind.status for kind in op.problem_kinds})
    for status in statuses:
        kinds = [kind for kind in op.problem_kinds if kind.status == status]
        responses[str(status)] = _problems(kinds)
    doc["responses"] = dict(sorted(responses.items()))
    return doc


def _parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": param.where,
        "description": param.description,
        "required": param.required,
        "schema": param.schema,
    }


def _header(param: Param) -> dict[str, Any]:
    return {"description": param.description, "required": param.required, "schema": param.schema}


def _request_body(body: type[BaseModel] | RawBody) -> dict[str, Any]:
    if isinstance(body, RawBody):
        media = {name: {"schema": schema} for name, schema in body.media}
        return {"required": True, "description": body.description, "content": media}
    return {"required": True, "content": {"application/json": {"schema": _ref(body)}}}


def _answer(answer: Answer) -> dict[str, Any]:
    schema = _ref(answer.model) if answer.model is not None else answer.schema
    doc: dict[str, Any] = {
        "description": answer.description,
        "content": {answer.media: {"schema": schema}},
    }
    if answer.headers:
        doc["headers"] = {h.name: _header(h) for h in answer.headers}
    return doc


def _problems(kinds: list[ProblemKind]) -> dict[str, Any]:
    """One status's problems: each kind's `type` pinned, so a client can tell them apart."""
    schemas = [{**_ref(k.model), "properties": {"type": {"const": k.uri}}} for k in kinds]
    unique = list({repr(s): s for s in schemas}.values())
    doc: dict[str, Any] = {
        "description": "; ".join(_kind_line(k) for k in kinds),
        "content": {PROBLEM_JSON: {"schema": unique[0] if len(unique) == 1 else {"anyOf": unique}}},
    }
    headers = {name: value for k in kinds for name, value in k.headers}
    if headers:
        doc["headers"] = {
            name: {"description": f"`{value}`", "schema": {"type": "string"}}
            for name, value in headers.items()
        }
    return doc


def _kind_line(kind: ProblemKind) -> str:
    named = "" if kind.uri == "about:blank" else f" (`{kind.uri}`)"
    return f"{kind.title}{named}: {kind.when}"
