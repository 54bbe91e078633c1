"""Avro single-object encoding of every schema in schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from pipeline.exceptions import CatalogError, DecodeError, ValidationError
from pipeline.kafka.codecs import HEADER_LEN, MAGIC, AvroCodec, Schema, SchemaSet, load_schema
from pipeline.settings import Settings

SCHEMAS_DIR = Settings.from_env({}).schemas_dir
NAMES = sorted(SchemaSet.from_dir(SCHEMAS_DIR).by_name)
# Avro's share/test/data/schema-tests.txt: CRC-64-AVRO of `"int"` and of an empty record.
INT_FP = 8247732601305521295  # 0x7275d51a3f395c8f
FOO_FP = -4824392279771201922
FOO_SCHEMA = {"fields": [], "type": "record", "name": "foo"}


def defaults(schema: Schema) -> dict[str, Any]:
    return {f["name"]: f["default"] for f in schema.parsed["fields"] if "default" in f}


def write_schema(directory: Path, doc: dict[str, Any], name: str | None = None) -> Path:
    path = directory / f"{name or doc['name']}.avsc"
    path.write_text(json.dumps(doc))
    return path


def status_schema_doc() -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / "NotificationStatus.avsc").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_fills_defaults(name: str, codec: AvroCodec, sample: Any) -> None:
    record = sample(name)
    schema = codec.schemas.get(name)
    data = codec.encode(name, record, check=True)
    assert data[:HEADER_LEN] == schema.header
    assert codec.decode(name, data) == {**defaults(schema), **record}


@pytest.mark.parametrize("path", sorted(SCHEMAS_DIR.glob("*.avsc")), ids=lambda p: p.name)
def test_schema_file_is_named_after_its_record(path: Path) -> None:
    assert json.loads(path.read_text())["name"] == path.stem


def test_from_dir_rejects_a_misnamed_file(tmp_path: Path) -> None:
    write_schema(tmp_path, FOO_SCHEMA, name="Bar")
    with pytest.raises(CatalogError, match=r"Bar\.avsc"):
        SchemaSet.from_dir(tmp_path)


def test_fastavro_gives_the_spec_fingerprint_as_little_endian_hex() -> None:
    assert fingerprint('"int"', "CRC-64-AVRO") == "8f5c393f1ad57572"
    assert bytes.fromhex("8f5c393f1ad57572") == INT_FP.to_bytes(8, "little")


def test_header_is_magic_and_little_endian_fingerprint() -> None:
    schema = Schema(name="int", parsed="int", fingerprint=INT_FP)
    # The single-object header of `"int"` in Apache Avro's own test suite.
    assert schema.header == MAGIC + bytes.fromhex("8f5c393f1ad57572")
    assert schema.header == bytes.fromhex("c3018f5c393f1ad57572")


def test_load_schema_fingerprint_matches_the_avro_spec(tmp_path: Path) -> None:
    schema = load_schema(write_schema(tmp_path, FOO_SCHEMA))
    assert schema.fingerprint == FOO_FP % 2**64
    assert schema.header == MAGIC + FOO_FP.to_bytes(8, "little", signed=True)


def test_encoded_header_carries_the_spec_fingerprint(codec: AvroCodec, sample: Any) -> None:
    schema = codec.schemas.get("NotificationStatus")
    expected = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema.parsed), "CRC-64-AVRO"))
    assert codec.encode("NotificationStatus", sample("NotificationStatus"))[2:10] == expected


def _valid(codec: AvroCodec, sample: Any) -> bytes:
    return codec.encode("NotificationStatus", sample("NotificationStatus"))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda c, s: b"", id="empty"),
        pytest.param(lambda c, s: None, id="none"),
        pytest.param(lambda c, s: b"definitely not avro", id="garbage"),
        pytest.param(lambda c, s: MAGIC + b"\x01\x02", id="short-header"),
        pytest.param(lambda c, s: MAGIC + bytes(8) + _valid(c, s)[HEADER_LEN:], id="unknown-fp"),
        pytest.param(lambda c, s: _valid(c, s)[: HEADER_LEN + 4], id="truncated-body"),
        pytest.param(lambda c, s: _valid(c, s)[:HEADER_LEN] + b"\xff" * 6, id="corrupt-body"),
        pytest.param(lambda c, s: c.encode("AuditRecord", s("AuditRecord")), id="other-record"),
    ],
)
def test_decode_rejects_bad_bytes(make: Any, codec: AvroCodec, sample: Any) -> None:
    with pytest.raises(DecodeError):
        codec.decode("NotificationStatus", make(codec, sample))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"tenant": None}, id="missing-required"),
        pytest.param({"attempt": "one"}, id="wrong-type"),
        pytest.param({"status": "LOST"}, id="unknown-enum-symbol"),
    ],
)
def test_encode_with_check_rejects_a_wrong_record(
    change: dict[str, Any], codec: AvroCodec, sample: Any
) -> None:
    record = {k: v for k, v in {**sample("NotificationStatus"), **change}.items() if v is not None}
    with pytest.raises(ValidationError, match="NotificationStatus"):
        codec.encode("NotificationStatus", record, check=True)


def test_older_writer_schema_decodes_with_defaults(
    tmp_path: Path, codec: AvroCodec, sample: Any
) -> None:
    current = codec.schemas.get("NotificationStatus")
    doc = status_schema_doc()
    doc["fields"] = [f for f in doc["fields"] if f["name"] not in ("attempt", "priority")]
    old = load_schema(write_schema(tmp_path, doc))
    assert old.fingerprint != current.fingerprint
    record = {k: v for k, v in sample("NotificationStatus").items() if k != "attempt"}
    data = AvroCodec(SchemaSet({"NotificationStatus": old})).encode("NotificationStatus", record)

    with pytest.raises(DecodeError, match="unknown writer schema"):
        codec.decode("NotificationStatus", data)
    codec.schemas.add_writer(old)
    decoded = codec.decode("NotificationStatus", data)
    assert decoded == {**defaults(current), **record}
    assert (decoded["attempt"], decoded["priority"]) == (0, None)


def test_newer_writer_schema_decodes_without_its_new_field(
    tmp_path: Path, codec: AvroCodec, sample: Any
) -> None:
    doc = status_schema_doc()
    doc["fields"].append({"name": "campaign", "type": "string", "default": ""})
    new = load_schema(write_schema(tmp_path, doc))
    record = sample("NotificationStatus")
    data = AvroCodec(SchemaSet({"NotificationStatus": new})).encode(
        "NotificationStatus", {**record, "campaign": "black-friday"}
    )
    codec.schemas.add_writer(new)
    decoded = codec.decode("NotificationStatus", data)
    assert "campaign" not in decoded
    assert decoded == codec.decode("NotificationStatus", codec.encode("NotificationStatus", record))


def test_a_status_written_before_outcome_existed_still_decodes() -> None:
    """schemas/previous/ keeps the version 0.6 wrote: its records on the status topic
    decode after the upgrade, with the new field's default."""
    codec = AvroCodec(SchemaSet.from_dir(SCHEMAS_DIR))  # as the worker loads it
    old = load_schema(SCHEMAS_DIR / "previous" / "NotificationStatus.0.6.avsc")
    assert old.fingerprint in codec.schemas.by_fingerprint
    assert "outcome" not in [f["name"] for f in old.parsed["fields"]]
    record = {"messageId": "m-1", "tenant": "acme", "userId": "u-1", "status": "RETRY",
              "at": "2026-11-28T10:00:00.000Z", "channel": "whatsapp"}  # fmt: skip
    data = AvroCodec(SchemaSet({"NotificationStatus": old})).encode("NotificationStatus", record)
    decoded = codec.decode("NotificationStatus", data)
    assert decoded["status"] == "RETRY" and decoded["outcome"] is None


def test_a_status_written_before_it_said_what_was_rendered_still_decodes() -> None:
    """The NotificationStatus of 0.7 (before locale, variant, templateVersion, segments):
    its records decode after the upgrade, with null for each new field."""
    codec = AvroCodec(SchemaSet.from_dir(SCHEMAS_DIR))
    old = load_schema(SCHEMAS_DIR / "previous" / "NotificationStatus.0.7.avsc")
    assert old.fingerprint in codec.schemas.by_fingerprint
    record = {"messageId": "m-1", "tenant": "acme", "userId": "u-1", "status": "SENT",
              "at": "2026-11-28T10:00:00.000Z", "channel": "sms", "outcome": None}  # fmt: skip
    data = AvroCodec(SchemaSet({"NotificationStatus": old})).encode("NotificationStatus", record)
    decoded = codec.decode("NotificationStatus", data)
    assert decoded["status"] == "SENT" and decoded["channel"] == "sms"
    assert [decoded[k] for k in ("locale", "variant", "templateVersion", "segments")] == [None] * 4


def test_a_dispatch_written_before_template_version_and_segments_still_decodes(
    sample: Any,
) -> None:
    """A ChannelDispatch of 0.7 waiting on a lane (or in the scheduler) at the upgrade."""
    codec = AvroCodec(SchemaSet.from_dir(SCHEMAS_DIR))
    old = load_schema(SCHEMAS_DIR / "previous" / "ChannelDispatch.0.7.avsc")
    assert old.fingerprint in codec.schemas.by_fingerprint
    record = sample("ChannelDispatch")
    record = {k: v for k, v in record.items() if k not in ("templateVersion", "segments")}
    data = AvroCodec(SchemaSet({"ChannelDispatch": old})).encode("ChannelDispatch", record)
    decoded = codec.decode("ChannelDispatch", data)
    assert decoded["messageId"] == record["messageId"]
    assert decoded["templateVersion"] is None and decoded["segments"] is None


def test_a_dispatch_written_before_push_data_and_whatsapp_template_still_decodes(
    sample: Any,
) -> None:
    """A ChannelDispatch of 0.8 waiting on a lane (or in the scheduler) at the upgrade:
    no push data, no approved template (a WhatsApp one then goes as text or falls back)."""
    codec = AvroCodec(SchemaSet.from_dir(SCHEMAS_DIR))
    old = load_schema(SCHEMAS_DIR / "previous" / "ChannelDispatch.0.8.avsc")
    assert old.fingerprint in codec.schemas.by_fingerprint
    record = sample("ChannelDispatch")
    data = AvroCodec(SchemaSet({"ChannelDispatch": old})).encode("ChannelDispatch", record)
    decoded = codec.decode("ChannelDispatch", data)
    assert decoded["messageId"] == record["messageId"] and decoded["segments"] is None
    assert decoded["pushData"] is None and decoded["whatsappTemplate"] is None


def test_a_previous_version_of_no_current_schema_is_refused(tmp_path: Path) -> None:
    write_schema(tmp_path, {"type": "record", "name": "Kept", "fields": []})
    (tmp_path / "previous").mkdir()
    write_schema(tmp_path / "previous", {"type": "record", "name": "Gone", "fields": []})
    with pytest.raises(CatalogError, match="previous"):
        SchemaSet.from_dir(tmp_path)
