"""Create and verify the topics of the catalog with confluent-kafka's AdminClient."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from pipeline.exceptions import CatalogError
from pipeline.kafka.catalog import Catalog, TopicSpec

__all__ = ["TopicReport", "admin_client", "apply", "list_topics", "verify"]


@dataclass(frozen=True)
class TopicReport:
    name: str
    action: str  # created | ok | mismatch
    detail: str = ""


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})


def apply(catalog: Catalog, bootstrap: str, *, timeout: float = 30.0) -> list[TopicReport]:
    """Create missing topics and verify existing ones; mismatches are reported, not fixed."""
    admin = admin_client(bootstrap)
    existing = _describe(admin, timeout)
    missing = [spec for spec in catalog.values() if spec.name not in existing]
    reports: dict[str, TopicReport] = {}
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication, config=s.configs()) for s in missing],
            request_timeout=timeout,
        )
        for name, fut in futures.items():
            try:
                fut.result()
                reports[name] = TopicReport(name, "created")
            except KafkaException as exc:
                err = exc.args[0]
                if err.name() != "TOPIC_ALREADY_EXISTS":
                    raise CatalogError(f"cannot create {name}: {err.str()}") from exc
        existing = _describe(admin, timeout)
    for report in verify(catalog, admin, existing, timeout):
        reports.setdefault(report.name, report)
    return [reports[name] for name in catalog]


def list_topics(catalog: Catalog, bootstrap: str, *, timeout: float = 30.0) -> list[TopicReport]:
    admin = admin_client(bootstrap)
    return verify(catalog, admin, _describe(admin, timeout), timeout)


def verify(
    catalog: Catalog, admin: AdminClient, existing: dict[str, int], timeout: float
) -> list[TopicReport]:
    present = [s for s in catalog.values() if s.name in existing]
    configs = _configs(admin, [s.name for s in present], timeout) if present else {}
    out = []
    for spec in catalog.values():
        if spec.name not in existing:
            out.append(TopicReport(spec.name, "mismatch", "missing"))
            continue
        problems = _compare(spec, existing[spec.name], configs.get(spec.name, {}))
        out.append(TopicReport(spec.name, "mismatch" if problems else "ok", "; ".join(problems)))
    return out


def _compare(spec: TopicSpec, partitions: int, config: dict[str, str]) -> list[str]:
    problems = []
    if partitions != spec.partitions:
        problems.append(f"partitions {partitions} != {spec.partitions}")
    for key, want in spec.configs().items():
        have = config.get(key)
        if have != want:
            problems.append(f"{key} {have} != {want}")
    return problems


def _describe(admin: AdminClient, timeout: float) -> dict[str, int]:
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise CatalogError(f"cannot reach Kafka: {exc}") from exc
    return {name: len(t.partitions) for name, t in md.topics.items()}


def _configs(admin: AdminClient, names: list[str], timeout: float) -> dict[str, dict[str, str]]:
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    futures = admin.describe_configs(resources, request_timeout=timeout)
    out = {}
    for resource, fut in futures.items():
        entries = fut.result()
        out[resource.name] = {k: v.value for k, v in entries.items()}
    return out
