"""The commands as a user runs them: broker and topics against the session's real broker,
the simulator as a process of its own."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from pipeline.http.auth import TokenVerifier
from pipeline.settings import Settings
from tests.harness import Stack, free_port, herald_cmd


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(herald_cmd(*args), env=env, capture_output=True, text=True, timeout=120)


def test_topics_list_reports_every_catalog_topic_ok(stack: Stack, repo: Path) -> None:
    done = run(stack.env, "topics", "list")
    assert done.returncode == 0, done.stdout + done.stderr
    catalog = yaml.safe_load((repo / "topics.yaml").read_text())["topics"]
    lines = {line.split()[1]: line.split()[0] for line in done.stdout.splitlines()}
    assert lines == {name: "ok" for name in catalog}


def test_topics_apply_exits_non_zero_on_a_mismatch(
    stack: Stack, repo: Path, tmp_path: Path
) -> None:
    doc = yaml.safe_load((repo / "topics.yaml").read_text())
    doc["topics"]["herald.audit"]["partitions"] = 3
    changed = tmp_path / "topics.yaml"
    changed.write_text(yaml.safe_dump(doc))
    done = run({**stack.env, "HERALD_TOPICS_FILE": str(changed)}, "topics", "apply")
    assert done.returncode == 1
    assert any(
        line.startswith("mismatch") and "herald.audit" in line and "partitions 6 != 3" in line
        for line in done.stdout.splitlines()
    ), done.stdout


def test_broker_status_of_the_running_broker(kafka: str, broker_settings: Settings | None) -> None:
    if broker_settings is None:
        pytest.skip("HERALD_TEST_BOOTSTRAP: the suite did not start the broker")
    env = {
        "PATH": "/usr/bin:/bin",
        "HERALD_HOME": str(broker_settings.home),
        "HERALD_KAFKA_PORT": str(broker_settings.kafka_port),
    }
    done = run(env, "broker", "status")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == broker_settings.local_bootstrap


def test_broker_status_of_a_home_without_a_broker(stack: Stack, tmp_path: Path) -> None:
    env = {**stack.env, "HERALD_HOME": str(tmp_path), "HERALD_KAFKA_PORT": "1"}
    env.pop("KAFKA_BOOTSTRAP_SERVERS")
    done = run(env, "broker", "status")
    assert done.returncode == 1
    assert done.stdout.strip().splitlines()[-1] == "127.0.0.1:1"


def test_token_is_printed_alone_on_its_last_line(stack: Stack) -> None:
    done = run(stack.env, "token", "--tenant", "acme", "--scope", "notifications:send")
    assert done.returncode == 0
    token = done.stdout.strip().splitlines()[-1]
    principal = TokenVerifier(secret=stack.env["HERALD_JWT_SECRET"]).verify(f"Bearer {token}")
    assert principal.tenant == "acme" and principal.scopes == {"notifications:send"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_herald_simulator_stops_cleanly_on_a_signal(signum: int) -> None:
    http, smtp = free_port(), free_port()
    env = {**os.environ, "HERALD_SIM_PORT": str(http), "HERALD_SIM_SMTP_PORT": str(smtp)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "herald",
        "simulator",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while b"simulator up" not in await proc.stdout.readline():
                assert proc.returncode is None
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{http}/_sim/messages") as resp,
        ):
            assert resp.status == 200 and await resp.json() == []
        _, writer = await asyncio.open_connection("127.0.0.1", smtp)
        writer.close()
        proc.send_signal(signum)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
