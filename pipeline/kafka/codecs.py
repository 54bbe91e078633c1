"""Avro encoding of every record on every topic.

Framing is Avro single-object encoding (the Avro 1.8+ specification): the two
marker bytes ``C3 01``, the writer schema's 64-bit CRC-64-AVRO (Rabin)
fingerprint of its parsing canonical form, little-endian, then the binary
body. A reader finds the writer schema by that fingerprint, so a record
written with an older schema version still decodes (schema resolution).

The schemas in ``schemas/*.avsc`` are the source of truth; `SchemaSet` loads
them once and `AvroCodec` encodes/decodes by record name. `register_with_faust`
exposes one Faust codec per record (``avro-NotificationRequest`` ...), so
sinks encode with the schema their catalog entry names.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from faust.serializers import codecs as faust_codecs
from faust.serializers.codecs import Codec

from pipeline.exceptions import CatalogError, DecodeError, ValidationError
from pipeline.kafka.avro_errors import field_errors

__all__ = [
    "HEADER_LEN",
    "MAGIC",
    "AvroCodec",
    "FaustAvro",
    "Schema",
    "SchemaSet",
    "load_schema",
    "register_with_faust",
]

MAGIC = b"\xc3\x01"
HEADER_LEN = 10


@dataclass(frozen=True)
class Schema:
    """One parsed record schema with its single-object header."""

    name: str
    parsed: Any
    fingerprint: int

    @property
    def header(self) -> bytes:
        return MAGIC + self.fingerprint.to_bytes(8, "little")


def load_schema(path: Path) -> Schema:
    raw = json.loads(path.read_text())
    parsed = parse_schema(raw, named_schemas={})
    canonical = to_parsing_canonical_form(parsed)
    # fastavro gives the fingerprint's bytes in little-endian order, as hex.
    fp = int.from_bytes(bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")), "little")
    return Schema(name=raw["name"], parsed=parsed, fingerprint=fp)


class SchemaSet:
    """Every schema of a directory, by record name and by fingerprint."""

    def __init__(self, schemas: Mapping[str, Schema]) -> None:
        self.by_name = dict(schemas)
        self.by_fingerprint = {s.fingerprint: s for s in schemas.values()}

    @classmethod
    def from_dir(cls, directory: Path) -> SchemaSet:
        """The schemas of `directory`, and its `previous/` versions as writers only.

        A schema that gains a field changes its fingerprint: records already on a topic
        (written by the version before an upgrade) name the old one. Keeping that
        version in `previous/` lets them decode, with the new field's default.
        """
        files = sorted(directory.glob("*.avsc"))
        if not files:
            raise CatalogError(f"no Avro schemas in {directory}")
        schemas = {}
        for path in files:
            schema = load_schema(path)
            if schema.name != path.stem:
                raise CatalogError(f"{path.name} defines {schema.name}; name the file after it")
            schemas[schema.name] = schema
        found = cls(schemas)
        for path in sorted((directory / "previous").glob("*.avsc")):
            old = load_schema(path)
            if old.name not in schemas:
                raise CatalogError(f"previous/{path.name} is a version of no current schema")
            found.add_writer(old)
        return found

    def get(self, name: str) -> Schema:
        try:
            return self.by_name[name]
        except KeyError:
            raise CatalogError(f"no schema named {name!r}") from None

    def add_writer(self, schema: Schema) -> None:
        """Accept records written with another (older or newer) version of a schema."""
        self.by_fingerprint[schema.fingerprint] = schema


class AvroCodec:
    """Encode and decode records by schema name, single-object framed."""

    def __init__(self, schemas: SchemaSet) -> None:
        self.schemas = schemas

    def encode(self, name: str, record: Mapping[str, Any], *, check: bool = False) -> bytes:
        """Encode `record`; with `check`, a record that does not fit says why."""
        schema = self.schemas.get(name)
        if check:
            errors = field_errors(record, schema.parsed)
            if errors:
                raise ValidationError(f"not a valid {name}", errors)
        buf = io.BytesIO()
        buf.write(schema.header)
        try:
            fastavro.schemaless_writer(buf, schema.parsed, record)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # Said by field, never as a Python repr (an HTTP 422 shows it to the caller).
            errors = field_errors(record, schema.parsed) or [{"field": "", "message": str(exc)}]
            raise ValidationError(f"not a valid {name}", errors) from exc
        return buf.getvalue()

    def writer_name(self, data: bytes | None) -> str | None:
        """The record name of the schema `data` was written with, if it is a known one."""
        if not data or data[:2] != MAGIC or len(data) < HEADER_LEN:
            return None
        writer = self.schemas.by_fingerprint.get(int.from_bytes(data[2:HEADER_LEN], "little"))
        return writer.name if writer is not None else None

    def decode(self, name: str, data: bytes | None) -> dict[str, Any]:
        """Decode bytes written with any known version of `name`'s schema."""
        if not data:
            raise DecodeError("empty record")
        if data[:2] != MAGIC or len(data) < HEADER_LEN:
            raise DecodeError("not Avro single-object encoded (missing C3 01 marker)")
        fp = int.from_bytes(data[2:HEADER_LEN], "little")
        writer = self.schemas.by_fingerprint.get(fp)
        if writer is None:
            raise DecodeError(f"unknown writer schema fingerprint {fp:016x}")
        reader = self.schemas.get(name)
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(data[HEADER_LEN:]),
                writer.parsed,
                None if writer is reader else reader.parsed,
            )
        except Exception as exc:  # fastavro raises many types on corrupt bytes
            raise DecodeError(f"cannot decode {name}: {exc!r}") from exc
        if not isinstance(record, dict):
            raise DecodeError(f"{name} decoded to {type(record).__name__}, not a record")
        return record


def register_with_faust(codec: AvroCodec) -> dict[str, str]:
    """Register one Faust codec per schema; returns record name -> codec name."""
    names = {}
    for name in codec.schemas.by_name:
        codec_name = f"avro-{name}"
        faust_codecs.register(codec_name, FaustAvro(codec, name))
        names[name] = codec_name
    return names


class FaustAvro(Codec):
    """A Faust codec bound to one record schema."""

    def __init__(self, codec: AvroCodec, name: str) -> None:
        super().__init__(codec=codec, name=name)
        self._avro = codec
        self._name = name

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, bytes):
            return obj  # already encoded by the stage
        return self._avro.encode(self._name, obj)

    def _loads(self, s: bytes) -> Any:
        return self._avro.decode(self._name, s)
