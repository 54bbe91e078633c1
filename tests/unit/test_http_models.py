"""The HTTP models agree with the Avro schemas, the source of truth for records.

A NotificationRequest body over HTTP and a NotificationRequest record on Kafka
carry the same fields with the same types, optionality, symbols and defaults;
only `tenant` differs: required on the record, taken from the token over HTTP.
"""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from pipeline.http.models import NotificationRequest, Status
from pipeline.http.openapi import describe
from pipeline.http.routes import operations
from pipeline.settings import Settings

Shape = frozenset[Any]
AVRO_NUMBERS = {"int": "integer", "long": "integer", "float": "number", "double": "number"}


def avsc(name: str) -> dict[str, Any]:
    return dict(json.loads((Settings().schemas_dir / f"{name}.avsc").read_text()))


def avro_shape(avro: Any) -> Shape:
    """An Avro type as a set of alternatives, each a comparable description."""
    if isinstance(avro, list):
        return frozenset().union(*(avro_shape(a) for a in avro))
    if isinstance(avro, str):
        return frozenset({AVRO_NUMBERS.get(avro, avro)})
    kind = avro["type"]
    if kind == "array":
        return frozenset({("array", avro_shape(avro["items"]))})
    if kind == "map":
        return frozenset({("map", avro_shape(avro["values"]))})
    if kind == "enum":
        return frozenset({("enum", tuple(avro["symbols"]))})
    if kind == "record":
        fields = tuple(sorted((f["name"], avro_shape(f["type"])) for f in avro["fields"]))
        return frozenset({("record", fields)})
    return avro_shape(kind)


def json_shape(schema: dict[str, Any], defs: dict[str, Any]) -> Shape:
    """A JSON Schema (as /openapi.json publishes it) in the same terms."""
    if "$ref" in schema:
        return json_shape(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in schema:
        return frozenset().union(*(json_shape(s, defs) for s in schema["anyOf"]))
    if "enum" in schema:
        return frozenset({("enum", tuple(schema["enum"]))})
    kind = schema["type"]
    if isinstance(kind, list):
        return frozenset().union(*(json_shape({"type": k}, defs) for k in kind))
    if kind == "array":
        return frozenset({("array", json_shape(schema["items"], defs))})
    if kind == "object" and "properties" in schema:
        props = schema["properties"]
        fields = tuple(sorted((n, json_shape(p, defs)) for n, p in props.items()))
        return frozenset({("record", fields)})
    if kind == "object":
        return frozenset({("map", json_shape(schema["additionalProperties"], defs))})
    return frozenset({kind})


def published() -> tuple[dict[str, Any], dict[str, Any]]:
    defs = describe(operations())["components"]["schemas"]
    return defs["NotificationRequest"], defs


def widen(shape: Shape) -> Shape:
    """JSON's `number` includes integers: an Avro long-or-double union is a JSON number."""
    kinds = set(shape)
    if {"integer", "number"} <= kinds:
        kinds.discard("integer")
    return frozenset(kinds)


def test_the_body_has_the_records_fields() -> None:
    schema, _ = published()
    record = [f["name"] for f in avsc("NotificationRequest")["fields"]]
    assert list(schema["properties"]) == record


@pytest.mark.parametrize("field", [f["name"] for f in avsc("NotificationRequest")["fields"]])
def test_each_field_has_the_records_type(field: str) -> None:
    schema, defs = published()
    avro = next(f for f in avsc("NotificationRequest")["fields"] if f["name"] == field)
    expected = avro_shape(avro["type"])
    if field == "tenant":  # over HTTP: optional, the token's
        expected = expected | {"null"}
    if field == "data":
        [(_, values)] = expected
        expected = frozenset({("map", widen(values))})
    assert json_shape(schema["properties"][field], defs) == expected


@pytest.mark.parametrize("field", [f["name"] for f in avsc("NotificationRequest")["fields"]])
def test_each_field_is_required_and_defaulted_as_in_the_record(field: str) -> None:
    schema, _ = published()
    avro = next(f for f in avsc("NotificationRequest")["fields"] if f["name"] == field)
    required = field in schema.get("required", [])
    if field == "tenant":
        assert not required and "default" not in avro
        return
    assert required == ("default" not in avro)
    if not required:
        model_field = NotificationRequest.model_fields[field]
        assert model_field.get_default(call_default_factory=True) == avro["default"]


def test_the_recipient_has_the_records_fields_and_requirements() -> None:
    _, defs = published()
    avro = avsc("NotificationRequest")["fields"][2]["type"]
    recipient = defs["Recipient"]
    assert list(recipient["properties"]) == [f["name"] for f in avro["fields"]]
    assert set(recipient["required"]) == {f["name"] for f in avro["fields"] if "default" not in f}


def test_the_state_names_the_statuses_of_the_status_record() -> None:
    avro = next(f for f in avsc("NotificationStatus")["fields"] if f["name"] == "status")
    assert list(get_args(Status)) == avro["type"]["symbols"]


def test_the_attempt_outcomes_are_the_domains() -> None:
    from pipeline.domain.statuses import AttemptOutcome as Outcomes
    from pipeline.http.models import AttemptOutcome

    assert list(get_args(AttemptOutcome)) == [o.value for o in Outcomes]
    assert "FALLBACK" in get_args(AttemptOutcome)
