"""Size limits: the arithmetic from `max.message.bytes`, and where each limit is enforced
(ingest, the dead letter, the catalog), without Kafka."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.domain.limits import (
    BROKER_DEFAULT_MAX_MESSAGE_BYTES,
    HISTORY_RESERVE,
    KEY_MAX,
    PRODUCER_MAX_REQUEST_BYTES,
    RECORD_FRAMING,
    Limits,
    record_budget,
    size_bound,
)
from pipeline.domain.planning import check_fits, plan_request
from pipeline.domain.records import dead_letter, dlq_status
from pipeline.domain.templates import TemplateCatalog
from pipeline.exceptions import RenderedTooLarge, RequestTooLarge
from pipeline.kafka.catalog import Catalog
from pipeline.kafka.codecs import AvroCodec, SchemaSet, load_schema
from pipeline.settings import Settings
from tests.unit.conftest import SAMPLES


def test_record_budget_is_the_smaller_of_topic_and_producer_less_framing_and_key() -> None:
    assert record_budget(None) == PRODUCER_MAX_REQUEST_BYTES - RECORD_FRAMING - KEY_MAX
    assert record_budget(512 * 1024) == 512 * 1024 - RECORD_FRAMING - KEY_MAX
    assert record_budget(None, producer_max_request=2_000_000) == (
        BROKER_DEFAULT_MAX_MESSAGE_BYTES - RECORD_FRAMING - KEY_MAX
    )


def test_limits_from_the_topics_and_the_http_setting() -> None:
    limits = Limits.compute(requests_max=300_000, dispatch_max=600_000, http_max_body=256 * 1024)
    assert limits.request_bytes == 300_000 - RECORD_FRAMING - KEY_MAX
    assert limits.dispatch_bytes == 600_000 - RECORD_FRAMING - KEY_MAX
    assert limits.rendered_bytes == limits.dispatch_bytes - HISTORY_RESERVE
    assert limits.http_body_bytes == 256 * 1024  # the setting is the smaller
    assert Limits.compute(requests_max=100_000, http_max_body=256 * 1024).http_body_bytes == (
        100_000 - RECORD_FRAMING - KEY_MAX
    )  # the topic is the smaller: the body limit follows it
    default = Limits.compute()
    assert default.dead_letter_bytes == 999_615
    assert default.dead_letter_room(b"k" * 1000) == 999_615 - (1000 - KEY_MAX)


def test_the_catalog_reads_max_message_bytes_and_applies_it() -> None:
    doc = Catalog.load(Settings().topics_file)
    assert doc.limits() == Limits.compute()  # topics.yaml sets none: the broker default
    sms = {"max_message_bytes": 200_000}
    raw = {
        "defaults": {"partitions": 1, "replication": 1},
        "topics": {
            name: {
                "cleanup": "delete", "key": "k", "value": spec.value,
                **(sms if name.startswith("herald.dispatch.sms") else {}),
            }
            for name, spec in doc.items()
        },
    }  # fmt: skip
    small = Catalog.from_dict(raw)
    assert small["herald.dispatch.sms.bulk"].configs()["max.message.bytes"] == "200000"
    assert small.limits().dispatch_bytes == 200_000 - RECORD_FRAMING - KEY_MAX
    assert small.limits().request_bytes == Limits.compute().request_bytes


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_size_bound_is_never_below_the_encoding(codec: AvroCodec, name: str) -> None:
    assert size_bound(SAMPLES[name]) >= len(codec.encode(name, SAMPLES[name]))


def test_size_bound_holds_for_big_unicode_content(codec: AvroCodec) -> None:
    record = {**SAMPLES["ChannelDispatch"], "text": "é€" * 50_000, "html": "&amp;" * 40_000}
    assert 0 <= size_bound(record) - len(codec.encode("ChannelDispatch", record)) < 2_000


def test_a_dead_letter_too_big_keeps_its_coordinates_and_a_truncated_payload(
    codec: AvroCodec,
) -> None:
    value = b"\xc3\x01" + b"x" * 1_100_000
    letter = dead_letter(
        topic="herald.notifications.requests", partition=4, offset=1234, key=b"acme:u-1",
        value=value, stage="ingest", reason="too-large", error="e", limit=999_615,
    )  # fmt: skip
    encoded = codec.encode("DeadLetter", letter)
    assert len(encoded) <= 999_615
    back = codec.decode("DeadLetter", encoded)
    assert (back["topic"], back["partition"], back["offset"]) == (
        "herald.notifications.requests", 4, 1234
    )  # fmt: skip
    assert back["truncated"] is True and back["valueBytes"] == len(value)
    assert value.startswith(back["value"]) and len(back["value"]) > 990_000


def test_a_dead_letter_that_fits_is_untouched(codec: AvroCodec) -> None:
    letter = dead_letter(
        topic="t", partition=0, offset=1, key=b"k", value=b"v" * 1000, stage="s",
        reason="invalid", error="e", limit=999_615,
    )  # fmt: skip
    assert (letter["value"], letter["truncated"], letter["valueBytes"]) == (
        b"v" * 1000,
        False,
        None,
    )


def test_old_dead_letters_still_decode(codec: AvroCodec, tmp_path: Path) -> None:
    """The two new fields have defaults: a reader of the new schema reads old records."""
    schema = json.loads((Settings().schemas_dir / "DeadLetter.avsc").read_text())
    schema["fields"] = [f for f in schema["fields"] if f["name"] not in ("truncated", "valueBytes")]
    path = tmp_path / "DeadLetter.avsc"
    path.write_text(json.dumps(schema))
    old = load_schema(path)
    old_codec = AvroCodec(SchemaSet({"DeadLetter": old}))
    record = dict(SAMPLES["DeadLetter"])
    codec.schemas.add_writer(old)
    back = codec.decode("DeadLetter", old_codec.encode("DeadLetter", record))
    assert (back["truncated"], back["valueBytes"]) == (False, None)


def big_request(make_request: Any, filler: str, size: int) -> dict[str, Any]:
    request = make_request()
    request["data"] = {**request["data"], "name": filler * (size // len(filler.encode()))}
    return dict(request)


def test_plan_rejects_a_request_over_the_request_limit(
    make_request: Any, templates: TemplateCatalog
) -> None:
    limits = Limits.compute(requests_max=100_000)
    plan = plan_request(
        make_request(), b"\xc3\x01" + b"x" * 100_000, templates=templates, preferences=None,
        available={"email"}, limits=limits,
    )  # fmt: skip
    assert plan.dead_letter_reason == "too-large" and plan.dispatches == []
    assert [s["status"] for s in plan.statuses] == ["DLQ"]
    assert str(limits.request_bytes) in (plan.error or "")


def test_plan_rejects_content_that_renders_over_the_lane_limit(
    codec: AvroCodec, make_request: Any, templates: TemplateCatalog
) -> None:
    """180 KB of `&` is a valid request that grows 7x in a dispatch (text, 5x in html)."""
    request = big_request(make_request, "&", 180_000)
    original = codec.encode("NotificationRequest", request)
    plan = plan_request(
        request, original, templates=templates, preferences=None, available={"email"},
        limits=Limits.compute(),
    )  # fmt: skip
    assert plan.dead_letter_reason == "too-large" and plan.dispatches == []
    assert [s["status"] for s in plan.statuses] == ["DLQ"]
    assert "renders to" in (plan.error or "")


def test_plan_accepts_a_big_request_whose_dispatch_fits(
    codec: AvroCodec, make_request: Any, templates: TemplateCatalog
) -> None:
    request = big_request(make_request, "x", 180_000)
    original = codec.encode("NotificationRequest", request)
    limits = Limits.compute()
    plan = plan_request(
        request, original, templates=templates, preferences=None, available={"email"},
        limits=limits,
    )  # fmt: skip
    assert plan.dead_letter_reason is None
    [(_c, _l, dispatch)] = plan.dispatches
    assert len(codec.encode("ChannelDispatch", dispatch)) <= limits.rendered_bytes


def test_check_fits_for_the_http_door(make_request: Any, templates: TemplateCatalog) -> None:
    limits = Limits.compute()
    with pytest.raises(RequestTooLarge, match=str(limits.request_bytes)):
        check_fits(big_request(make_request, "x", 1_000_000), templates=templates, limits=limits,
                   channels=["email"])  # fmt: skip
    with pytest.raises(RenderedTooLarge, match=str(limits.rendered_bytes)) as info:
        check_fits(big_request(make_request, "&", 180_000), templates=templates, limits=limits,
                   channels=["email"])  # fmt: skip
    assert info.value.errors[0]["field"] == "data"
    check_fits(big_request(make_request, "x", 180_000), templates=templates, limits=limits,
               channels=["email"])  # fmt: skip


def test_dlq_status_of_a_request_and_of_a_dispatch(make_request: Any) -> None:
    request = dlq_status(make_request(), "produce-failed: x")
    assert request is not None
    assert (request["status"], request["messageId"], request["userId"]) == ("DLQ", "m-1", "u-1")
    dispatch = dlq_status({**SAMPLES["ChannelDispatch"], "attempt": 2}, "produce-failed: x")
    assert dispatch is not None
    assert (dispatch["channel"], dispatch["attempt"]) == ("email", 2)
    assert dlq_status({"tenant": "acme"}, "x") is None  # names no message
