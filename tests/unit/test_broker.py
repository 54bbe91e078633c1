"""The local broker's preconditions fail with a clear error, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.exceptions import BrokerError
from pipeline.kafka import broker
from pipeline.settings import Settings


def test_missing_java_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match="Java 17"):
        broker.java_major_version()


def test_missing_maven_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(broker.shutil, "which", lambda name: None)
    settings = Settings.from_env({}, home=tmp_path, kafka_dist=tmp_path / "dist")
    with pytest.raises(BrokerError, match="Maven"):
        broker.fetch(settings)


@pytest.mark.parametrize(
    ("banner", "major"),
    [('openjdk version "17.0.15" 2025-04-15', 17), ('java version "1.8.0_392"', 8),
     ('openjdk version "21" 2023-09-19', 21)],
)  # fmt: skip
def test_java_version_is_read_from_the_banner(
    monkeypatch: pytest.MonkeyPatch, banner: str, major: int
) -> None:
    class Done:
        stderr = banner

    monkeypatch.setattr(broker.shutil, "which", lambda name: "/usr/bin/java")
    monkeypatch.setattr(broker.subprocess, "run", lambda *a, **k: Done())
    assert broker.java_major_version() == major


def test_an_old_java_refuses_to_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(broker, "java_major_version", lambda: 11)
    with pytest.raises(BrokerError, match="Java 17"):
        broker.start(Settings.from_env({}, home=tmp_path, kafka_port=1, kafka_controller_port=2))


def test_status_of_a_home_without_a_broker(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path, kafka_port=1)
    assert not broker.is_running(settings)
    assert broker.stop(settings) is False


def test_a_cluster_id_never_looks_like_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # The storage tool reads an id starting with "-" as an option and refuses to format.
    ids = iter([b"\xf8" + bytes(15), b"\x01" * 16])  # base64 of the first starts with "-"
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: type("U", (), {"bytes": next(ids)})())
    cluster_id = broker._cluster_id()
    assert cluster_id == "AQEBAQEBAQEBAQEBAQEBAQ" and not cluster_id.startswith("-")
