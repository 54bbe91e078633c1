"""A record that does not fit its Avro schema, told as `{field, message}` a person can act on.

fastavro's own errors name fields by the record type that holds them
(`herald.Recipient.userId`) and come as Python reprs; the HTTP door answers
with problem+json `errors[]` and the dead letters carry the text, so both want
the path inside the record (`recipient.userId`) and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fastavro
from fastavro.validation import validate

__all__ = ["field_errors"]

_PYTHON_TO_AVRO = {"NoneType": "null", "bool": "boolean", "int": "long", "float": "double",
                   "str": "string", "bytes": "bytes", "list": "array", "dict": "map"}  # fmt: skip


def field_errors(record: Mapping[str, Any], parsed: Any) -> list[dict[str, str]]:
    """Where and why `record` does not fit the parsed schema; empty when it fits."""
    try:
        validate(record, parsed, raise_errors=True)
    except fastavro.validation.ValidationError as exc:
        paths = _record_paths(parsed, "", {})
        return [_describe(error, paths) for error in exc.errors]
    return []


def _describe(error: Any, paths: Mapping[str, str]) -> dict[str, str]:
    holder, _, name = str(error.field).rpartition(".")
    prefix = paths.get(holder, holder.rsplit(".", 1)[-1])
    field = f"{prefix}.{name}" if prefix else name
    expected = _type_name(error.schema)
    if error.datum is None:
        return {"field": field, "message": f"required ({expected})"}
    got = _PYTHON_TO_AVRO.get(type(error.datum).__name__, type(error.datum).__name__)
    return {"field": field, "message": f"expected {expected}, not {got}"}


def _record_paths(schema: Any, path: str, out: dict[str, str]) -> dict[str, str]:
    """Each named record type in `schema` by the path of the field that holds it."""
    if isinstance(schema, list):
        for member in schema:
            _record_paths(member, path, out)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            out.setdefault(schema["name"], path)
            for f in schema.get("fields", ()):
                _record_paths(f["type"], f"{path}.{f['name']}".lstrip("."), out)
        elif schema.get("type") == "array":
            _record_paths(schema.get("items"), path, out)
        elif schema.get("type") == "map":
            _record_paths(schema.get("values"), path, out)
    return out


def _type_name(schema: Any) -> str:
    if isinstance(schema, list):
        return " or ".join(_type_name(m) for m in schema)
    if isinstance(schema, dict):
        kind = str(schema.get("type"))
        if kind == "array":
            return f"array of {_type_name(schema.get('items'))}"
        if kind == "map":
            return f"map of {_type_name(schema.get('values'))}"
        return str(schema.get("name", kind)).rsplit(".", 1)[-1] if kind == "record" else kind
    return str(schema)
