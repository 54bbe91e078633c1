"""The session's real Kafka broker, its topics, and the simulator with one worker: the
fixtures the integration and e2e tests share (registered by tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.exceptions import BrokerError
from pipeline.kafka import admin, broker
from pipeline.kafka.catalog import Catalog
from pipeline.settings import Settings
from tests.harness import Stack, free_port, stack_env


@pytest.fixture(scope="session")
def broker_settings(
    tmp_path_factory: pytest.TempPathFactory, repo: Path
) -> Iterator[Settings | None]:
    """The session's local broker, running (None when HERALD_TEST_BOOTSTRAP is used)."""
    if os.environ.get("HERALD_TEST_BOOTSTRAP"):
        yield None
        return
    settings = local_broker(tmp_path_factory.mktemp("broker-home"), repo)
    try:
        yield settings
    finally:
        broker.stop(settings)


def local_broker(home: Path, repo: Path) -> Settings:
    """Start a local broker with its data under `home`, on free ports; its settings
    (`broker.stop(settings)` stops it)."""
    settings = Settings.from_env(
        {},
        home=home,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_dist=repo / ".herald" / f"kafka-{Settings().kafka_version}",
    )
    try:
        broker.start(settings)
    except BrokerError:
        # A free port can be taken between choosing it and binding it: try new ones once.
        broker.stop(settings)
        settings = settings.with_(kafka_port=free_port(), kafka_controller_port=free_port())
        broker.start(settings)
    return settings


@pytest.fixture(scope="session")
def kafka(broker_settings: Settings | None) -> str:
    """The session's bootstrap address, with every topic of the catalog applied."""
    if broker_settings is None:
        bootstrap = os.environ["HERALD_TEST_BOOTSTRAP"]
    else:
        bootstrap = broker_settings.local_bootstrap
    reports = admin.apply(Catalog.load(Settings().topics_file), bootstrap)
    assert all(r.action != "mismatch" for r in reports), reports
    return bootstrap


@pytest.fixture(scope="session")
def stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The simulator, one worker and the ingress in front of it, started once for the session.

    `stack.api` is the ingress (GETs and `Prefer: wait` forwarded to the worker);
    `stack.api_of("worker")` is the worker's own HTTP.
    """
    home = tmp_path_factory.mktemp("stack")
    # Tenant `flood` has a small quota, for the door's quota test (tests/e2e/test_door.py);
    # the simulator's WhatsApp business number is tenant `acme`'s (its service windows).
    extra = {"HERALD_TENANT_QUOTAS": "flood=5:10", "HERALD_WORKER_HTTP_PORT": str(free_port()),
             "WHATSAPP_WINDOW_TENANT": "acme"}  # fmt: skip
    running = Stack(stack_env(home, kafka, extra), home)
    try:
        running.start("simulator")
        running.start("worker")
        running.start("ingress")
        yield running
    finally:
        running.stop_all()
