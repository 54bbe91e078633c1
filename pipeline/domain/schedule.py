"""The durable scheduler: "produce this record to that topic at that time".

Retries (and, later, `sendAt` and cancellation) go through it so a waiting
delivery never blocks its partition and survives restarts:

    stage ──SCHEDULE──► herald.scheduler ──► [scheduler] schedule table (RocksDB)
    timer: due entries ──► their target topic, then ──FIRED──► herald.scheduler
                                             [scheduler] removes the entry

Faust forbids table writes outside stream iteration, so the timer never edits
the table: it publishes a FIRED marker that the agent applies. Until then the
worker remembers what it fired (in memory) so a tick does not fire twice; after
a crash an entry may fire once more, and the send ledger makes that harmless.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["due", "marker", "now_ms", "schedule", "to_entry"]


def now_ms() -> int:
    return int(time.time() * 1000)


def schedule(schedule_id: str, due_ms: int, topic: str, key: str, payload: bytes) -> dict[str, Any]:
    return {
        "id": schedule_id,
        "op": "SCHEDULE",
        "dueAt": due_ms,
        "topic": topic,
        "key": key,
        "payload": payload,
    }


def marker(entry_id: str, op: str, key: str) -> dict[str, Any]:
    """A FIRED or CANCEL marker for an entry (same key: same partition as the entry)."""
    return {"id": entry_id, "op": op, "dueAt": 0, "topic": "", "key": key, "payload": None}


def to_entry(record: Mapping[str, Any]) -> dict[str, Any]:
    """The table value for a SCHEDULE record (JSON: the payload as base64)."""
    return {
        "due": record["dueAt"],
        "topic": record["topic"],
        "key": record["key"],
        "payload": base64.b64encode(record["payload"] or b"").decode(),
    }


def due(
    entries: Iterable[tuple[str, Mapping[str, Any]]], now: int, skip: set[str]
) -> Iterator[tuple[str, str, str, bytes]]:
    """(id, topic, key, payload) of every entry due at `now` and not in `skip`."""
    for entry_id, entry in entries:
        if entry and entry["due"] <= now and entry_id not in skip:
            yield entry_id, entry["topic"], entry["key"], base64.b64decode(entry["payload"])
