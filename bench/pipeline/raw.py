"""Raw Kafka: how fast the clients alone move the benchmark's records on this broker.

These are the denominators of the ratios (see bench/README.md, "Why ratios"): confluent
produce and consume are what Kafka and librdkafka can carry; aiokafka produce, configured
as Faust's producer, is the most any single Faust worker could hope for. They run before
the worker starts, so nothing else competes for the CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from bench.pipeline.measure import MB, BenchError, log
from bench.pipeline.records import LINGER_MS, TENANT, create_topic, produce_one

__all__ = [
    "FAUST_MAX_BATCH",
    "RAW_PARTITIONS",
    "measure_raw",
    "raw_aiokafka_produce",
    "raw_confluent_consume",
    "raw_confluent_produce",
]

RAW_PARTITIONS = 6
FAUST_MAX_BATCH = 256 * 1024  # what pipeline/kafka/app.py gives Faust's (aiokafka) producer


def raw_confluent_produce(
    bootstrap: str, topic: str, keys: Sequence[bytes], value: bytes, n: int, timeout: float
) -> dict[str, Any]:
    """`n` records with linger and acks=all, timed from the first produce until flush
    returns, i.e. until the broker has acknowledged every one."""
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": LINGER_MS,
            "acks": "all",
            "delivery.report.only.error": True,
            "on_delivery": on_delivery,
        }
    )
    producer.list_topics(topic, timeout=10)  # connect and fetch metadata before timing
    deadline = time.monotonic() + timeout
    nbytes = 0
    start = time.perf_counter()
    for i in range(n):
        key = keys[i % len(keys)]
        produce_one(producer, topic, key, value, deadline)
        nbytes += len(key) + len(value)
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(max(1.0, deadline - time.monotonic()))
    elapsed = time.perf_counter() - start
    if left or errors:
        raise BenchError(f"confluent produce: {left} undelivered, errors: {errors[:3]}")
    return {
        "client": f"confluent-kafka {metadata.version('confluent-kafka')}",
        "config": {"linger.ms": LINGER_MS, "acks": "all"},
        "records": n,
        "bytes": nbytes,
        "seconds": elapsed,
        "records_per_s": n / elapsed,
        "mb_per_s": nbytes / elapsed / MB,
    }


def raw_confluent_consume(bootstrap: str, topic: str, n: int, timeout: float) -> dict[str, Any]:
    """The `n` records read back from the beginning, timed from assign to the last record;
    the start-up part of that time is `first_record_after_s`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.list_topics(topic, timeout=10)  # connect before timing
        deadline = time.monotonic() + timeout
        count = nbytes = 0
        start = time.perf_counter()
        first: float | None = None
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(RAW_PARTITIONS)])
        while count < n:
            if time.monotonic() > deadline:
                raise BenchError(f"confluent consume: {count}/{n} records after {timeout:.0f}s")
            for msg in consumer.consume(num_messages=10_000, timeout=1.0):
                if msg.error():
                    continue
                if first is None:
                    first = time.perf_counter()
                count += 1
                nbytes += len(msg.value() or b"") + len(msg.key() or b"")
        elapsed = time.perf_counter() - start
    finally:
        consumer.close()
    return {
        "client": f"confluent-kafka {metadata.version('confluent-kafka')}",
        "records": count,
        "bytes": nbytes,
        "seconds": elapsed,
        "first_record_after_s": (first - start) if first is not None else None,
        "records_per_s": count / elapsed,
        "mb_per_s": nbytes / elapsed / MB,
    }


async def _aiokafka_produce(
    bootstrap: str, topic: str, keys: Sequence[bytes], value: bytes, n: int, chunk: int
) -> dict[str, Any]:
    """`n` records with aiokafka as Faust configures it, awaiting `send` per record and
    gathering the delivery futures every `chunk`."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=LINGER_MS,
        acks="all",
        max_batch_size=FAUST_MAX_BATCH,
    )
    await producer.start()
    try:
        await producer.partitions_for(topic)  # metadata before timing
        nbytes = 0
        start = time.perf_counter()
        for base in range(0, n, chunk):
            futures = []
            for i in range(base, min(n, base + chunk)):
                key = keys[i % len(keys)]
                futures.append(await producer.send(topic, value, key=key))
                nbytes += len(key) + len(value)
            await asyncio.gather(*futures)
        elapsed = time.perf_counter() - start
    finally:
        await producer.stop()
    return {
        "client": f"aiokafka {metadata.version('aiokafka')}",
        "config": {
            "linger_ms": LINGER_MS,
            "acks": "all",
            "max_batch_size": FAUST_MAX_BATCH,
            "gather_every": chunk,
        },
        "records": n,
        "bytes": nbytes,
        "seconds": elapsed,
        "records_per_s": n / elapsed,
        "mb_per_s": nbytes / elapsed / MB,
    }


def raw_aiokafka_produce(
    bootstrap: str, topic: str, keys: Sequence[bytes], value: bytes, n: int, timeout: float
) -> dict[str, Any]:
    """`_aiokafka_produce` in its own event loop, bounded by `timeout`."""
    coro = _aiokafka_produce(bootstrap, topic, keys, value, n, chunk=10_000)
    try:
        return asyncio.run(asyncio.wait_for(coro, timeout))
    except TimeoutError:
        raise BenchError(f"aiokafka produce did not finish within {timeout:.0f}s") from None


def measure_raw(
    res: dict[str, Any], bootstrap: str, run: str, value: bytes, args: argparse.Namespace
) -> None:
    """The three raw runs into `res["raw"]`; a failure goes to `res["errors"]`, and what
    was measured before it stays."""
    keys = [f"{TENANT}:u-{run}-raw-{i:06d}".encode() for i in range(1000)]
    try:
        topic = f"bench.raw.confluent.{run}"
        create_topic(bootstrap, topic, RAW_PARTITIONS, 30)
        log(f"raw: confluent produce {args.raw_records} records to {topic}")
        res["raw"]["confluent_produce"] = raw_confluent_produce(
            bootstrap, topic, keys, value, args.raw_records, args.timeout
        )
        log("raw: confluent consume from the beginning")
        res["raw"]["confluent_consume"] = raw_confluent_consume(
            bootstrap, topic, args.raw_records, args.timeout
        )
        topic = f"bench.raw.aiokafka.{run}"
        create_topic(bootstrap, topic, RAW_PARTITIONS, 30)
        log(f"raw: aiokafka produce {args.raw_records} records to {topic}")
        res["raw"]["aiokafka_produce"] = raw_aiokafka_produce(
            bootstrap, topic, keys, value, args.raw_records, args.timeout
        )
    except (BenchError, KafkaException) as exc:
        res["errors"].append(f"raw: {exc}")
