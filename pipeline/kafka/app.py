"""The Faust application, configured from Settings. Registers nothing itself."""

from __future__ import annotations

from typing import Any

import faust

from pipeline.domain.limits import PRODUCER_MAX_REQUEST_BYTES
from pipeline.kafka import faust_fixes
from pipeline.kafka.ownership import Ownership
from pipeline.settings import Settings

__all__ = ["HeraldApp", "create_app"]


class HeraldApp(faust.App):
    """Faust's App, whose rebalances first wait for the batches being handled.

    Faust revokes partitions without waiting for the agents (`stream_wait_empty` is
    off: it would wait for every record fetched). Herald waits for the batch in hand
    only (see `Ownership.working`), which stops making provider calls once a
    rebalance starts: what it wrote is then on the broker before the next owner
    reads the tables.
    """

    def __init__(self, *args: Any, drain_s: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ownership = Ownership(self)
        self.drain_s = drain_s

    async def _on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self.ownership.drain(self.drain_s)
        await super()._on_partitions_revoked(revoked)

    async def on_stop(self) -> None:
        """A graceful stop lets the provider calls in flight finish first (then Faust
        stops the consumer, the agents and the providers' HTTP client)."""
        await self.ownership.stop(self.drain_s)
        await super().on_stop()


def create_app(settings: Settings) -> HeraldApp:
    faust_fixes.apply()  # before the consumer exists: see the module's docstring
    settings.datadir.mkdir(parents=True, exist_ok=True)  # Faust needs it to exist
    return HeraldApp(
        settings.app_id,
        # Batches in hand may finish within half the rebalance timeout (the member must
        # rejoin in time); a call still out then is in doubt for the next owner.
        drain_s=settings.rebalance_timeout_s / 2,
        broker=f"kafka://{settings.bootstrap}",
        store=settings.table_store,
        datadir=str(settings.datadir),
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=6,
        topic_disable_leader=True,
        web_enabled=False,  # the HTTP ingress is Herald's own aiohttp app
        # Every member advertises its own HTTP with the assignment, so a door can ask the
        # worker that owns a key (`pipeline.kafka.owners`); Faust's default is one URL for all.
        canonical_url=settings.advertised_base_url,
        table_standby_replicas=settings.table_standby_replicas,
        autodiscover=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_commit_interval=1.0,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        producer_max_request_size=PRODUCER_MAX_REQUEST_BYTES,  # the limits assume it
        producer_acks=-1,
        stream_wait_empty=False,
        table_cleanup_interval=60.0,
        # The store's index of recent keys to partitions, per table (Faust's default
        # 1,000): each key is kept as Faust's JSON encoding, about 4 KiB apiece, and the
        # index only spares reads made outside a record's stream a look in each partition.
        table_key_index_size=100,
    )
