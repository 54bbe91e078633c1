from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import admin, broker
from pipeline.catalog import Catalog
from pipeline.settings import Settings

from .harness import Stack, free_port, stack_env


@pytest.fixture(scope="session")
def broker_settings(tmp_path_factory: pytest.TempPathFactory, repo: Path) -> Settings | None:
    """Settings of the session's local broker; None when HERALD_TEST_BOOTSTRAP is used."""
    if os.environ.get("HERALD_TEST_BOOTSTRAP"):
        return None
    return Settings.from_env(
        {},
        home=tmp_path_factory.mktemp("broker-home"),
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_dist=repo / ".herald" / f"kafka-{Settings().kafka_version}",
    )


@pytest.fixture(scope="session")
def kafka(broker_settings: Settings | None) -> Iterator[str]:
    """One real broker for the session; its bootstrap address."""
    if broker_settings is None:
        yield os.environ["HERALD_TEST_BOOTSTRAP"]
        return
    settings = broker_settings
    bootstrap = broker.start(settings)
    try:
        reports = admin.apply(Catalog.load(settings.topics_file), bootstrap)
        assert all(r.action != "mismatch" for r in reports), reports
        yield bootstrap
    finally:
        broker.stop(settings)


@pytest.fixture(scope="session")
def stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The simulator and one worker, started once for the session."""
    home = tmp_path_factory.mktemp("stack")
    running = Stack(stack_env(home, kafka), home)
    try:
        running.start("simulator")
        running.start("worker")
        yield running
    finally:
        running.stop_all()
