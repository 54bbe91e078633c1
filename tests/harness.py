"""Helpers for integration tests over a real broker: the local stack of child processes
(simulator and workers, `pipeline.devstack.processes`) with what tests ask of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition

from pipeline.devstack.processes import LocalStack, free_port, herald_cmd, stack_env, wait_for
from pipeline.http.auth import issue_token
from pipeline.kafka.catalog import DLQ
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.settings import Settings

__all__ = [
    "DATA", "Stack", "at", "codec", "dead_letters", "free_port", "gaps_before_retries",
    "herald_cmd", "history", "phone", "post", "read_topic", "request_body", "stack_env",
    "unique", "wait_for",
]  # fmt: skip


@dataclass
class Stack(LocalStack):
    """A simulator and workers as child processes, on free ports, against one broker."""

    def token(self, tenant: str = "acme", scope: str = "notifications:send notifications:read",
              ttl_s: int = 3600) -> str:  # fmt: skip
        return issue_token(self.env["HERALD_JWT_SECRET"], tenant, scope, ttl_s=ttl_s)

    def headers(self, tenant: str = "acme", **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, **kw)}"}

    def fault(self, provider: str, **script: Any) -> None:
        resp = httpx.put(f"{self.sim}/_sim/faults/{provider}", json=script, timeout=5)
        assert resp.status_code == 204, resp.text

    def clear_faults(self) -> None:
        assert httpx.delete(f"{self.sim}/_sim/faults", timeout=5).status_code == 204

    def sim_messages(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {} if to is None else {"to": to}
        return list(httpx.get(f"{self.sim}/_sim/messages", params=params, timeout=5).json())

    def state(self, message_id: str, tenant: str = "acme") -> httpx.Response:
        return httpx.get(
            f"{self.api}/v1/notifications/{message_id}", headers=self.headers(tenant), timeout=5
        )

    def wait_status(self, message_id: str, status: str, tenant: str = "acme",
                    timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        """The state once `status` is in its history (it may have moved on since)."""

        def reached() -> dict[str, Any] | None:
            resp = self.state(message_id, tenant)
            if resp.status_code == 200 and status in [h["status"] for h in resp.json()["history"]]:
                return dict(resp.json())
            return None

        return wait_for(reached, timeout)

    def wait_status_in(self, message_id: str, statuses: set[str], tenant: str = "acme",
                       timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        def reached() -> dict[str, Any] | None:
            resp = self.state(message_id, tenant)
            if resp.status_code == 200 and resp.json()["status"] in statuses:
                return dict(resp.json())
            return None

        return wait_for(reached, timeout)


# ------------------------------------------------ requests, states and topics


DATA = {
    "name": "Ana", "bookingRef": "ABC123", "flight": "IB3456", "date": "2026-12-01",
    "origin": "MAD", "destination": "JFK",
}  # fmt: skip


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def request_body(user: str, **extra: Any) -> dict[str, Any]:
    body = {
        "recipient": {"userId": user, "email": f"{user}@example.com"},
        "template": "booking-confirmation",
        "data": DATA,
    }
    body.update(extra)
    return body


def post(stack: Stack, body: Any, tenant: str = "acme", **headers: str) -> httpx.Response:
    return httpx.post(
        f"{stack.api}/v1/notifications",
        json=body,
        headers={**stack.headers(tenant), **headers},
        timeout=10,
    )


def history(state: dict[str, Any]) -> list[str]:
    return [h["status"] for h in state["history"]]


def codec() -> AvroCodec:
    return AvroCodec(SchemaSet.from_dir(Settings().schemas_dir))


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record currently on `topic` (all partitions, from the beginning)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("test"),
                         "enable.auto.commit": False})  # fmt: skip
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for p in parts:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out, done = [], {p for p, end in ends.items() if end == 0}
        while len(done) < len(parts):
            msg = consumer.poll(5)
            assert msg is not None, f"stalled reading {topic}"
            if msg.error():
                continue
            out.append(msg)
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return out
    finally:
        consumer.close()


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))


def gaps_before_retries(state: dict[str, Any]) -> list[float]:
    """Seconds from each RETRY to the PROCESSING of the next attempt."""
    entries = state["history"]
    out = []
    for i, entry in enumerate(entries):
        if entry["status"] == "RETRY":
            nxt = next(e for e in entries[i + 1 :] if e["status"] == "PROCESSING")
            out.append((at(nxt) - at(entry)).total_seconds())
    return out


def dead_letters(stack: Stack, message_id: str) -> list[dict[str, Any]]:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    letters = [codec().decode("DeadLetter", m.value()) for m in read_topic(bootstrap, DLQ)]
    return [d for d in letters if d["messageId"] == message_id]


def phone() -> str:
    """A fresh Spanish mobile number, so every test has its own recipients."""
    return f"+3460{uuid.uuid4().int % 10**7:07d}"
