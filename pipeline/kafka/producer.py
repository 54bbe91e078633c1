"""The ingress's producer: a plain aiokafka producer, no stream processing around it.

`herald ingress` writes three topics (requests, audit, provider events) and answers
once the broker has the records: acks from every in-sync replica, idempotent (a
retried batch is not written twice), keys placed by murmur2 as Faust and the Java
clients place them, values Avro-encoded as the worker's sinks encode them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from pipeline.kafka.codecs import AvroCodec

__all__ = ["AckedProducer"]


class AckedProducer:
    """Produce Avro records to named topics and wait for the broker's acknowledgement."""

    def __init__(self, bootstrap: str, codec: AvroCodec, schemas: Mapping[str, str]) -> None:
        self.codec = codec
        self.schemas = dict(schemas)  # topic -> the Avro record its values are
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # latency first: records produced together still share a batch
            client_id="herald-ingress",
        )
        self.connected = False

    async def start(self) -> None:
        await self._producer.start()
        self.connected = True

    async def stop(self) -> None:
        self.connected = False
        await self._producer.stop()

    async def produce(
        self, topic: str, records: Sequence[tuple[str, Any]],
        headers: Mapping[str, bytes] | None = None,
    ) -> None:  # fmt: skip
        """Send every `(key, value)` to `topic`, each with `headers`; return once each is
        acknowledged."""
        schema = self.schemas[topic]
        pairs = list(headers.items()) if headers else None
        futures = [
            await self._producer.send(
                topic, key=key.encode(), value=self.codec.encode(schema, value), headers=pairs
            )
            for key, value in records
        ]
        if futures:
            await asyncio.gather(*futures)
