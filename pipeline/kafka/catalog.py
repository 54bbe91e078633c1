"""The topic catalog (`topics.yaml`): one `TopicSpec` per topic.

The catalog is what `herald topics apply` creates, what the topology binds
its agents to, and what the agreement test compares with `schemas/`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.domain.limits import BROKER_DEFAULT_MAX_MESSAGE_BYTES, Limits
from pipeline.exceptions import CatalogError

__all__ = [
    "AUDIT",
    "DLQ",
    "FLIGHT_EVENTS",
    "PREFERENCES",
    "PROFILES",
    "PROVIDER_EVENTS",
    "REQUESTS",
    "SCHEDULER",
    "SERVICE_WINDOWS",
    "STATUS",
    "SUBSCRIPTIONS",
    "TEMPLATES",
    "Catalog",
    "TopicSpec",
    "dispatch_topic",
]

# Names fixed by the contract; internal topics are looked up by these keys too.
REQUESTS = "herald.notifications.requests"
FLIGHT_EVENTS = "herald.tracktrace.flight-events"
SUBSCRIPTIONS = "herald.tracktrace.subscriptions"
PROFILES = "herald.users.profiles"
PREFERENCES = "herald.users.preferences"
STATUS = "herald.notifications.status"
DLQ = "herald.notifications.dlq"
PROVIDER_EVENTS = "herald.provider.events"
AUDIT = "herald.audit"
SCHEDULER = "herald.scheduler"
TEMPLATES = "herald.templates"
SERVICE_WINDOWS = "herald.whatsapp.service-windows"


def dispatch_topic(channel: str, lane: str) -> str:
    """The lane topic of one channel: `urgent` (high, standard) or `bulk` (marketing)."""
    return f"herald.dispatch.{channel}.{lane}"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    cleanup: str
    key: str
    value: str
    retention_ms: int | None = None
    writer: str = ""
    reader: str = ""
    table: str = ""
    max_message_bytes: int | None = None  # None: the broker's default (1048588)

    @property
    def compacted(self) -> bool:
        return "compact" in self.cleanup

    @property
    def is_changelog(self) -> bool:
        return bool(self.table)

    def configs(self) -> dict[str, str]:
        """Broker-side topic configs that `topics apply` sets and verifies."""
        out = {"cleanup.policy": self.cleanup}
        if self.retention_ms is not None:
            out["retention.ms"] = str(self.retention_ms)
        if self.max_message_bytes is not None:
            out["max.message.bytes"] = str(self.max_message_bytes)
        return out


class Catalog(Mapping[str, TopicSpec]):
    """All topics by name, in file order."""

    def __init__(self, topics: Mapping[str, TopicSpec]) -> None:
        self._topics = dict(topics)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CatalogError(f"cannot read topic catalog {path}: {exc}") from exc
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Catalog:
        defaults = doc.get("defaults", {})
        topics = {}
        for name, entry in (doc.get("topics") or {}).items():
            merged = {**defaults, **(entry or {})}
            try:
                topics[name] = TopicSpec(
                    name=name,
                    partitions=int(merged["partitions"]),
                    replication=int(merged.get("replication", 1)),
                    cleanup=str(merged["cleanup"]),
                    key=str(merged["key"]),
                    value=str(merged["value"]),
                    retention_ms=merged.get("retention_ms"),
                    writer=str(merged.get("writer", "")),
                    reader=str(merged.get("reader", "")),
                    table=str(merged.get("table", "")),
                    max_message_bytes=merged.get("max_message_bytes"),
                )
            except KeyError as exc:
                raise CatalogError(f"topic {name} lacks {exc.args[0]!r}") from None
        return cls(topics)

    def __getitem__(self, name: str) -> TopicSpec:
        try:
            return self._topics[name]
        except KeyError:
            raise CatalogError(f"topic {name!r} is not in the catalog") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._topics)

    def __len__(self) -> int:
        return len(self._topics)

    def changelog_for(self, app_id: str, table: str) -> TopicSpec:
        return self[f"{app_id}-{table}-changelog"]

    def limits(self, *, http_max_body: int | None = None) -> Limits:
        """The size limits its topics' `max.message.bytes` allow (`pipeline.domain.limits`)."""
        lanes = [s for s in self._topics.values() if s.value == "ChannelDispatch"]
        carriers = [*lanes, self[SCHEDULER]]  # the scheduler's entries carry a dispatch

        default = BROKER_DEFAULT_MAX_MESSAGE_BYTES
        dispatch_max = min(c.max_message_bytes or default for c in carriers)
        return Limits.compute(
            requests_max=self[REQUESTS].max_message_bytes,
            dispatch_max=dispatch_max,
            dlq_max=self[DLQ].max_message_bytes,
            http_max_body=http_max_body,
        )

    @property
    def record_schemas(self) -> set[str]:
        return {t.value for t in self._topics.values() if t.value != "json"}
