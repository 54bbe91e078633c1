"""`herald produce` and `herald tail`: JSON lines in and out of Avro topics."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, Producer
from confluent_kafka import TopicPartition as TP

from pipeline.domain.tenancy import record_key
from pipeline.exceptions import DecodeError, ValidationError
from pipeline.kafka.catalog import TopicSpec
from pipeline.kafka.codecs import AvroCodec

__all__ = [
    "decode_message",
    "key_for",
    "produce_lines",
    "producer_config",
    "tail",
    "to_json_line",
]


def key_for(spec: TopicSpec, record: Mapping[str, Any]) -> str:
    """The record's key by the catalog's key rule (`tenant:userId`, `flightKey`, ...)."""
    return record_key(spec.key, record)


def producer_config(bootstrap: str) -> dict[str, Any]:
    """confluent-kafka settings that place keys where Java clients and aiokafka (Faust) do.

    librdkafka's default partitioner is CRC32-based; every other Kafka client uses
    murmur2. Without this, a record produced here would land in another partition
    than the same key produced by the worker, and co-partitioned table lookups
    (preferences, idempotency) would miss it.
    """
    return {
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "acks": "all",
    }


def produce_lines(lines: Iterable[str], spec: TopicSpec, codec: AvroCodec, bootstrap: str) -> int:
    """Encode each JSON line with the topic's schema and produce it; returns the count."""
    producer = Producer(producer_config(bootstrap))
    errors: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    count = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"line {n}: not JSON: {exc}") from exc
        value = codec.encode(spec.value, record, check=True)
        producer.produce(spec.name, key=key_for(spec, record), value=value, on_delivery=delivered)
        producer.poll(0)
        count += 1
    producer.flush(30)
    if errors:
        raise KafkaException(errors[0])
    return count


def tail(
    spec: TopicSpec,
    codec: AvroCodec,
    bootstrap: str,
    *,
    from_beginning: bool = False,
    idle_timeout: float | None = None,
    max_records: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Decoded records of every partition, as dicts with `key` and `value`."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "herald-tail", "enable.auto.commit": False}
    )
    try:
        md = consumer.list_topics(spec.name, timeout=10)
        partitions = md.topics[spec.name].partitions
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TP(spec.name, p, start) for p in partitions])
        seen = 0
        last = time.monotonic()
        while max_records is None or seen < max_records:
            msg = consumer.poll(0.2)
            if msg is None:
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    return
                continue
            if msg.error():
                continue
            last = time.monotonic()
            seen += 1
            yield decode_message(spec, codec, msg)
    finally:
        consumer.close()


def decode_message(spec: TopicSpec, codec: AvroCodec, msg: Any) -> dict[str, Any]:
    key = msg.key().decode() if msg.key() is not None else None
    out: dict[str, Any] = {"key": key, "partition": msg.partition(), "offset": msg.offset()}
    if msg.value() is None:
        out["value"] = None
        return out
    try:
        out["value"] = codec.decode(spec.value, msg.value())
    except DecodeError as exc:
        out["error"] = str(exc)
        out["raw"] = base64.b64encode(msg.value()).decode()
    return out


def to_json_line(record: Any) -> str:
    return orjson.dumps(record, default=_default).decode()


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    raise TypeError(type(obj).__name__)
