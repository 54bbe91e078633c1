"""Which worker holds a table's key: the partition as Herald writes it, the owner as the
group's last assignment names it.

Herald writes a table in the partition of the record being handled (`in_event`), and
those records are keyed with raw strings placed by murmur2, as the Java client places
them (`tenant:messageId` on the status topic for the notification-state table,
`tenant:userId` on the preferences topic for the preferences table). So a key lives in
partition `murmur2(raw key bytes) % partitions`. Faust's own `app.router.key_store`
would not find it: it serializes the key with the table's key serializer first (JSON,
the key in quotes) and names another partition for most keys (a unit test shows it).

Who owns a partition: each worker advertises its own HTTP URL as Faust's
`canonical_url` (`HERALD_ADVERTISED_URL`), and Faust's assignor hands every member the
changelog distribution (URL -> changelog topic -> active partitions) with each
assignment. Standby replicas are not in it: they lag, so reads go to the active owner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.partitioner import murmur2
from faust.types.tuples import TP

__all__ = ["Owners", "Placement", "owner_of", "partition_of"]


def partition_of(key: str, partitions: int) -> int:
    """The partition of a raw string key under murmur2 (Kafka's default partitioner)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def owner_of(
    distribution: Mapping[str, Mapping[str, Sequence[int]]], topic: str, partition: int
) -> str | None:
    """The URL whose active partitions of `topic` include `partition` (None: nobody's)."""
    for url, topics in distribution.items():
        if partition in topics.get(topic, ()):
            return url
    return None


@dataclass(frozen=True)
class Placement:
    """Where one key of one table lives, as this worker's last assignment says."""

    partition: int
    local: bool  # this worker is the partition's active owner
    owner: str | None  # the active owner's advertised URL; None while nobody owns it


class Owners:
    """Placements of table keys, read from the Faust app's assignor (no state of its own).

    `settled` says whether this worker serves its tables now (joined, recovered, no
    rebalance under way): a key it does not find is then truly absent where it owns it.
    """

    def __init__(self, app: Any, settled: Callable[[], bool]) -> None:
        self.app = app
        self._settled = settled

    @property
    def own_url(self) -> str:
        return str(self.app.conf.canonical_url)

    def settled(self) -> bool:
        return self._settled()

    def place(self, table: Any, key: str) -> Placement:
        """Where `key` of the Faust `table` lives (its changelog's partition and owner)."""
        topic = table.changelog_topic.get_topic_name()
        partition = partition_of(key, int(table.partitions))
        assignor = self.app.assignor
        return Placement(
            partition=partition,
            local=bool(assignor.is_active(TP(topic, partition))),
            owner=owner_of(assignor.changelog_distribution, topic, partition),
        )
