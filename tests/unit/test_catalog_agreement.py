"""topics.yaml, schemas/ and the wired topology agree with each other and with the contract."""

from __future__ import annotations

from typing import Any

import pytest

from herald.topology import Topology
from herald.worker import BuiltWorker, build_worker
from pipeline.kafka import catalog as names
from pipeline.kafka.catalog import Catalog, TopicSpec
from pipeline.kafka.codecs import SchemaSet
from pipeline.kafka.io import key_for
from pipeline.settings import Settings

SETTINGS = Settings.from_env({})
CATALOG = Catalog.load(SETTINGS.topics_file)
CONTRACT = {
    names.REQUESTS: "delete",
    names.FLIGHT_EVENTS: "delete",
    names.SUBSCRIPTIONS: "compact",
    names.PROFILES: "compact",
    names.PREFERENCES: "compact",
    names.STATUS: "delete",
    names.DLQ: "delete",
    names.PROVIDER_EVENTS: "delete",
    names.AUDIT: "delete",
}
AVRO_TOPICS = [s for s in CATALOG.values() if s.value != "json"]
CHANGELOGS = [s for s in CATALOG.values() if s.is_changelog]
KEYED_BY_FIELDS = [s for s in AVRO_TOPICS if s.name != names.DLQ]  # the DLQ keeps the original key


def stages(spec: TopicSpec) -> list[str]:
    return [w.strip() for w in spec.writer.split(",")]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltWorker:
    settings = Settings.from_env(
        {},
        table_store="memory://",
        jwt_secret="x" * 32,
        worker_datadir=tmp_path_factory.mktemp("worker"),
    )
    return build_worker(settings, session=None)


@pytest.fixture(scope="module")
def topology(built: BuiltWorker) -> Topology:
    return built.topology


def test_every_record_topic_names_a_schema_file(schemas: SchemaSet) -> None:
    for spec in AVRO_TOPICS:
        assert (SETTINGS.schemas_dir / f"{spec.value}.avsc").is_file(), spec.name
        assert spec.value in schemas.by_name, spec.name


def test_every_schema_is_used_by_a_topic(schemas: SchemaSet) -> None:
    assert set(schemas.by_name) == CATALOG.record_schemas


def test_only_changelogs_are_json() -> None:
    assert {s.name for s in CATALOG.values() if s.value == "json"} == {s.name for s in CHANGELOGS}


@pytest.mark.parametrize(("topic", "cleanup"), CONTRACT.items())
def test_contract_topic(topic: str, cleanup: str) -> None:
    assert CATALOG[topic].cleanup == cleanup


@pytest.mark.parametrize("spec", KEYED_BY_FIELDS, ids=lambda s: s.name)
def test_key_rule_resolves_on_a_record(spec: TopicSpec, sample: Any) -> None:
    record = sample(spec.value)
    parts = [record.get(p) or (record.get("recipient") or {}).get(p) for p in spec.key.split(":")]
    assert all(parts), f"{spec.name}: the sample lacks a part of {spec.key}"
    assert key_for(spec, record) == ":".join(map(str, parts))


@pytest.mark.parametrize("spec", CHANGELOGS, ids=lambda s: s.name)
def test_changelog_is_compacted_and_copartitioned_with_its_writer(spec: TopicSpec) -> None:
    assert spec.compacted
    assert spec.name == f"{SETTINGS.app_id}-{spec.table}-changelog"
    readers = {s.reader: s for s in CATALOG.values() if s.reader}
    for stage in stages(spec):
        assert stage in readers, f"{spec.name}: writer {stage!r} reads no topic"
        assert readers[stage].partitions == spec.partitions, (spec.name, stage)


def test_wired_topics_are_in_the_catalog(topology: Topology) -> None:
    wired = set(topology.agents.values()) | topology.sinks | set(topology.tables.values())
    assert wired <= set(CATALOG)
    for table, changelog in topology.tables.items():
        assert CATALOG[changelog].table == table


def test_every_reader_is_an_agent_on_its_topic(topology: Topology) -> None:
    readers = {s.reader: s.name for s in CATALOG.values() if s.reader}
    assert topology.agents == readers


def test_every_changelog_is_a_wired_table(topology: Topology) -> None:
    assert set(topology.tables.values()) == {s.name for s in CHANGELOGS}


def test_agent_sources_are_copartitioned_with_every_table(topology: Topology) -> None:
    for agent, source in topology.agents.items():
        for changelog in topology.tables.values():
            assert CATALOG[source].partitions == CATALOG[changelog].partitions, (agent, changelog)


def test_faust_uses_the_catalog_names_and_partitions(built: BuiltWorker) -> None:
    topology = built.topology
    for table, changelog in topology.tables.items():
        faust_table = built.app.tables[table]
        assert faust_table.changelog_topic.get_topic_name() == changelog
        assert faust_table.partitions == CATALOG[changelog].partitions
    agents = {a.name: a.channel for a in built.app.agents.values()}
    assert set(agents) == set(topology.agents)
    for name, channel in agents.items():
        assert set(channel.topics) == {topology.agents[name]}
        assert channel.partitions == CATALOG[topology.agents[name]].partitions


def test_the_status_enum_is_the_schemas() -> None:
    from pipeline.domain.statuses import Status

    parsed = SchemaSet.from_dir(SETTINGS.schemas_dir).get("NotificationStatus").parsed
    enum = next(f["type"] for f in parsed["fields"] if f["name"] == "status")
    assert enum["symbols"] == [s.value for s in Status]
