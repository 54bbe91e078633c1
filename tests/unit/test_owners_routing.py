"""Scale-out routing without a broker: the partition of a key, the owner named by an
assignment, the one-hop rule, and two workers' doors in one process asking each other.

The workers are two aiohttp test servers over stand-in runtimes; where each key lives
is fixed by a stand-in of `Owners`. The real group is in tests/e2e/test_scale_out.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aiokafka.partitioner import DefaultPartitioner
from faust.types.tuples import TP

from herald.cli import parser
from herald.up import worker_children
from herald.worker import build_worker
from pipeline.domain.state import public_view
from pipeline.http import door as door_module
from pipeline.http.api import Ingress
from pipeline.http.auth import TokenVerifier
from pipeline.http.door import InlineDoor
from pipeline.http.routing import FORWARDED, Router, next_hop, same_worker, was_forwarded
from pipeline.kafka.owners import Owners, Placement, owner_of, partition_of
from pipeline.settings import Settings
from tests.unit.conftest import AT
from tests.unit.test_http_door import EXAMPLE, SECRET, headers, sent_state, stand_in

PARTITIONS = 6
KEYS = [f"acme:m-{n}" for n in range(200)]


# ------------------------------------------------------------ the partition of a key


def test_a_keys_partition_is_murmur2_of_its_raw_bytes_as_kafka_places_it() -> None:
    every = list(range(PARTITIONS))
    kafka = DefaultPartitioner()  # the Java client's placement, as aiokafka implements it
    for key in KEYS:
        assert partition_of(key, PARTITIONS) == kafka(key.encode(), every, every)


@pytest.fixture(scope="module")
def worker_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The wired Faust app of a worker (memory store; nothing started)."""
    datadir = tmp_path_factory.mktemp("worker")
    settings = Settings.from_env(
        {}, table_store="memory://", jwt_secret=SECRET, worker_datadir=datadir,
        worker_http_port=8181,
    )  # fmt: skip
    return build_worker(settings, None).app


def test_faust_own_key_store_would_look_in_another_partition_for_most_keys(
    worker_app: Any,
) -> None:
    """Faust's router serializes the key with the table's serializer (JSON) before it
    partitions it; Herald's tables hold raw keys, so Owners partitions the raw bytes."""
    table = worker_app.tables["notification-state"]
    kafka = DefaultPartitioner()
    every = list(range(PARTITIONS))
    faust_bytes = [table.changelog_topic.prepare_key(k, None)[0] for k in KEYS]
    assert faust_bytes[0] == b'"acme:m-0"'  # JSON, quotes and all
    faust_says = [kafka(b, every, every) for b in faust_bytes]
    herald_says = [partition_of(k, PARTITIONS) for k in KEYS]
    differ = sum(a != b for a, b in zip(faust_says, herald_says, strict=True))
    assert differ > len(KEYS) // 2


def test_the_worker_advertises_its_own_url_and_keeps_standbys(worker_app: Any) -> None:
    assert str(worker_app.conf.canonical_url) == "http://127.0.0.1:8181"
    assert worker_app.conf.table_standby_replicas == 1


# ------------------------------------------------------------ owners from the assignment


def test_the_owner_is_the_url_whose_active_partitions_hold_the_key() -> None:
    changelog = "herald-notification-state-changelog"
    distribution = {
        "http://127.0.0.1:1": {changelog: [0, 2, 4], "other": [1]},
        "http://127.0.0.1:2": {changelog: [1, 3, 5]},
    }
    assert owner_of(distribution, changelog, 4) == "http://127.0.0.1:1"
    assert owner_of(distribution, changelog, 1) == "http://127.0.0.1:2"
    assert owner_of(distribution, "other", 1) == "http://127.0.0.1:1"
    assert owner_of({}, changelog, 1) is None  # no assignment yet: nobody's


def test_owners_place_a_key_by_the_assignment_faust_received(worker_app: Any) -> None:
    table = worker_app.tables["notification-state"]
    changelog = table.changelog_topic.get_topic_name()
    assignor = worker_app.assignor
    mine, theirs = [0, 2, 4], [1, 3, 5]
    assignor.changelog_distribution = {
        "http://127.0.0.1:8181": {changelog: mine},
        "http://127.0.0.1:8282": {changelog: theirs},
    }
    assignor._active_tps = {TP(changelog, p) for p in mine}
    owners = Owners(worker_app, settled=lambda: True)
    for key in KEYS[:24]:
        placement = owners.place(table, key)
        assert placement.partition == partition_of(key, PARTITIONS)
        local = placement.partition in mine
        assert placement.local is local
        assert placement.owner == ("http://127.0.0.1:8181" if local else "http://127.0.0.1:8282")


# ------------------------------------------------------------ at most one hop


@pytest.mark.parametrize(
    ("placement", "forwarded", "hop"),
    [
        (Placement(1, local=False, owner="http://127.0.0.1:2"), False, "http://127.0.0.1:2"),
        (Placement(1, local=False, owner="http://127.0.0.1:2"), True, None),  # never twice
        (Placement(1, local=True, owner="http://127.0.0.1:1"), False, None),
        (Placement(1, local=False, owner=None), False, None),  # nobody's yet: answered here
        (Placement(1, local=False, owner="http://127.0.0.1:1/"), False, None),  # ourselves
    ],
)  # fmt: skip
def test_a_request_is_forwarded_once_at_most(
    placement: Placement, forwarded: bool, hop: str | None
) -> None:
    assert next_hop(placement, forwarded=forwarded, own_url="http://127.0.0.1:1") == hop


def test_a_forwarded_request_says_so() -> None:
    assert was_forwarded({FORWARDED: "1"}) and not was_forwarded({"Prefer": "wait=1"})
    assert same_worker("http://127.0.0.1:1", "http://127.0.0.1:1/")
    assert not same_worker("http://127.0.0.1:1", "http://127.0.0.1:2")


# ------------------------------------------------------------ two doors in one process


@dataclass
class Fixed:
    """Where keys live, fixed by the test: key -> owner URL (default: this worker)."""

    own_url: str = ""
    owners: dict[str, str] = field(default_factory=dict)
    is_settled: bool = True

    def settled(self) -> bool:
        return self.is_settled

    def place(self, table: Any, key: str) -> Placement:
        owner = self.owners.get(key, self.own_url)
        return Placement(0, local=owner == self.own_url, owner=owner)


@dataclass
class Worker:
    url: str
    rt: Any
    placements: Fixed

    def served(self, route: str) -> float:
        """Requests this worker answered on `route` (its herald_http_requests)."""
        samples = self.rt.metrics.http_requests.collect()[0].samples
        return sum(s.value for s in samples if s.labels.get("route") == route
                   and s.name.endswith("_total"))  # fmt: skip

    def metric(self, name: str, **labels: str) -> float | None:
        return self.rt.metrics.registry.get_sample_value(name, labels)


@asynccontextmanager
async def two_workers() -> AsyncIterator[tuple[Worker, Worker]]:
    async with aiohttp.ClientSession() as session:
        workers, servers = [], []
        for _ in range(2):
            rt, placements = stand_in(), Fixed()
            router = Router(placements, session, check_timeout_s=1.0)
            app = Ingress(InlineDoor(rt, lambda: True, router), TokenVerifier(secret=SECRET))
            server = TestServer(app.build(), host="127.0.0.1")
            await server.start_server()
            placements.own_url = str(server.make_url("")).rstrip("/")
            servers.append(server)
            workers.append(Worker(placements.own_url, rt, placements))
        try:
            yield workers[0], workers[1]
        finally:
            for server in servers:
                await server.close()


async def call(worker: Worker, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as client:
        kw.setdefault("headers", headers())
        async with client.request(method, worker.url + path, **kw) as resp:
            return resp.status, await resp.json(content_type=None)


async def test_a_get_at_either_worker_reads_the_state_where_it_lives() -> None:
    async with two_workers() as (a, b):
        b.rt.tables.state["acme:m-1"] = sent_state("m-1")
        for w in (a, b):
            w.placements.owners["acme:m-1"] = b.url
        assert await call(a, "GET", "/v1/notifications/m-1") == (200, sent_state_view("m-1"))
        assert await call(b, "GET", "/v1/notifications/m-1") == (200, sent_state_view("m-1"))
        assert (await call(a, "GET", "/v1/notifications/nope"))[0] == 404  # a's own, absent
    assert b.served("/v1/notifications/{messageId}") == 2  # b's own GET and a's forward
    assert a.metric("herald_forwarded_total", what="state") == 1


def sent_state_view(message_id: str) -> dict[str, Any]:
    return dict(public_view(sent_state(message_id)))


async def test_prefer_wait_at_a_worker_waits_where_the_state_lives() -> None:
    body = {**EXAMPLE, "messageId": "m-3"}
    async with two_workers() as (a, b):
        a.placements.owners["acme:m-3"] = b.url

        async def sent_later() -> None:
            await asyncio.sleep(0.3)
            b.rt.tables.state["acme:m-3"] = sent_state("m-3")

        later = asyncio.create_task(sent_later())
        status, state = await call(a, "POST", "/v1/notifications", json=body,
                                   headers={**headers(), "Prefer": "wait=5"})  # fmt: skip
        await later
    assert status == 200 and state["status"] == "SENT"
    assert a.rt.sinks.requests.sent[0][0] == "acme:u1"  # produced by the door it reached


async def test_disagreeing_workers_forward_once_then_answer_503_not_404(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(door_module, "SETTLE_S", 0.2)
    async with two_workers() as (a, b):
        a.placements.owners["acme:m-9"] = b.url  # each believes the other owns it
        b.placements.owners["acme:m-9"] = a.url
        status, problem = await call(a, "GET", "/v1/notifications/m-9")
    assert status == 503 and problem["type"] == "urn:herald:problem:rebalancing"
    route = "/v1/notifications/{messageId}"
    assert (a.served(route), b.served(route)) == (1, 1)  # one hop, not a ping-pong


async def test_an_unsettled_worker_answers_503_rebalancing_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(door_module, "SETTLE_S", 0.1)
    async with two_workers() as (a, _b):
        a.placements.is_settled = False
        async with aiohttp.ClientSession() as client:
            url = f"{a.url}/v1/notifications/m-10"
            async with client.get(url, headers=headers()) as resp:
                assert resp.status == 503 and resp.headers["Retry-After"] == "1"
                assert (await resp.json(content_type=None))["title"] == "Rebalancing"


def withdrawn(user: str) -> dict[str, Any]:
    consent = {"granted": False, "source": "test", "at": AT}
    return {"tenant": "acme", "userId": user, "channels": {}, "categories": {},
            "all": consent, "updatedAt": AT}  # fmt: skip


async def test_the_opted_out_check_at_a_worker_reads_the_owners_preferences() -> None:
    async with two_workers() as (a, b):
        b.rt.tables.preferences["acme:u1"] = withdrawn("u1")
        a.placements.owners["acme:u1"] = b.url
        status, problem = await call(a, "POST", "/v1/notifications", json=EXAMPLE)
    assert status == 403 and problem["rule"] == "opted-out-all"
    assert a.rt.sinks.requests.sent == [] and len(a.rt.sinks.audit.sent) == 1
    assert a.metric("herald_forwarded_total", what="preferences") == 1


async def test_without_the_owner_a_post_is_accepted_and_counted_unchecked() -> None:
    async with two_workers() as (a, _b):
        a.placements.owners["acme:u1"] = "http://127.0.0.1:9"  # nothing listens there
        status, accepted = await call(a, "POST", "/v1/notifications", json=EXAMPLE)
    assert status == 202 and accepted["status"] == "PENDING"
    assert a.metric("herald_consent_unchecked_total") == 1
    assert [k for k, _ in a.rt.sinks.requests.sent] == ["acme:u1"]  # the pipeline decides


async def test_the_consent_route_answers_the_stored_record_for_the_callers_tenant() -> None:
    async with two_workers() as (a, _b):
        a.rt.tables.preferences["acme:u1"] = withdrawn("u1")
        a.rt.tables.preferences["globex:u1"] = withdrawn("u1")
        mine = await call(a, "GET", "/v1/users/u1/consent")
        none = await call(a, "GET", "/v1/users/u2/consent")
        bad = await call(a, "GET", "/v1/users/a%20b/consent")
    assert mine == (200, {"userId": "u1", "preferences": withdrawn("u1")})
    assert none == (200, {"userId": "u2", "preferences": None})
    assert bad[0] == 422


# ------------------------------------------------------------ herald up --workers N


def test_herald_up_gives_each_worker_its_own_port_state_and_advertised_url() -> None:
    settings = Settings.from_env({}, home=Path("/tmp/herald-up-home"))
    shell = {"HERALD_ADVERTISED_URL": "http://shared:1", "HERALD_HOME": "/tmp/herald-up-home"}
    children = worker_children(settings, shell, 8181, 3)
    assert [c.name for c in children] == ["worker", "worker-2", "worker-3"]
    ports = [c.port for c in children]
    assert ports[0] == 8181 and len(set(ports)) == 3
    for child in children:
        assert child.env["HERALD_WORKER_HTTP_PORT"] == str(child.port)
        assert child.env["HERALD_ADVERTISED_URL"] == f"http://127.0.0.1:{child.port}"
        assert Settings.from_env(child.env).advertised_base_url == f"http://127.0.0.1:{child.port}"
    datadirs = [Settings.from_env(c.env).datadir for c in children]
    assert datadirs == [Path("/tmp/herald-up-home/worker"), Path("/tmp/herald-up-home/worker-2"),
                        Path("/tmp/herald-up-home/worker-3")]  # fmt: skip


def test_herald_up_takes_a_worker_count() -> None:
    assert parser().parse_args(["up", "--workers", "2"]).workers == 2
    assert parser().parse_args(["up"]).workers == 1


def test_a_worker_advertises_where_the_others_reach_it() -> None:
    assert Settings.from_env({}).advertised_base_url == "http://127.0.0.1:8080"
    behind = {"HERALD_WORKER_HTTP_PORT": "9001"}
    assert Settings.from_env(behind).advertised_base_url == "http://127.0.0.1:9001"
    anywhere = Settings.from_env({"HERALD_HTTP_HOST": "0.0.0.0"}).advertised_base_url
    assert anywhere == f"http://{socket.gethostname()}:8080"  # a container's own name
    given = {"HERALD_ADVERTISED_URL": "http://worker-3.herald:8080/"}
    assert Settings.from_env(given).advertised_base_url == "http://worker-3.herald:8080"
