"""The Faust application, configured from Settings. Registers nothing itself."""

from __future__ import annotations

import faust

from .settings import Settings


def create_app(settings: Settings) -> faust.App:
    settings.datadir.mkdir(parents=True, exist_ok=True)  # Faust needs it to exist
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store=settings.table_store,
        datadir=str(settings.datadir),
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=6,
        topic_disable_leader=True,
        web_enabled=False,  # the HTTP ingress is Herald's own aiohttp app
        autodiscover=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_commit_interval=1.0,
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        producer_acks=-1,
        stream_wait_empty=False,
        table_cleanup_interval=60.0,
    )
