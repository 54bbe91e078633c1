"""`herald up` (what ./run.sh runs): everything from nothing, then Ctrl-C stops it all;
`herald up --workers 2`: two workers in one group behind the ingress."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pipeline.kafka import broker
from pipeline.settings import Settings
from tests.harness import free_port, herald_cmd, request_body, unique, wait_for

pytestmark = pytest.mark.slow


@dataclass
class Up:
    """A running `herald up`: its public API, token, simulator and printed lines."""

    api: str
    token: str
    sim: str
    lines: list[str]

    def worker_ports(self) -> dict[str, int]:
        """The workers' own ports, as `herald up` printed them (`worker: http://...`)."""
        out = {}
        for line in self.lines:
            name, _, rest = line.partition(": http://")
            if name.startswith("worker") and rest:
                out[name] = int(rest.split()[0].rsplit(":", 1)[1])
        return out

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, user: str) -> str:
        resp = httpx.post(f"{self.api}/v1/notifications", json=request_body(user),
                          headers=self.auth(), timeout=10)  # fmt: skip
        assert resp.status_code == 202, resp.text
        return str(resp.json()["messageId"])

    def sent(self, base: str, message_id: str) -> bool:
        state = httpx.get(f"{base}/v1/notifications/{message_id}", headers=self.auth(), timeout=5)
        if state.status_code != 200:
            return False
        return "SENT" in [h["status"] for h in state.json()["history"]]


@contextmanager
def herald_up(tmp_path: Path, repo: Path, *args: str) -> Iterator[Up]:
    """`herald up ARGS` on free ports; Ctrl-C at the end, and everything must stop."""
    ports = {name: free_port() for name in ("kafka", "controller", "http", "sim", "smtp")}
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.pop("HERALD_JWT_SECRET", None)
    env.update(
        {
            "HERALD_HOME": str(tmp_path),
            "HERALD_KAFKA_DIST": str(repo / ".herald" / f"kafka-{Settings().kafka_version}"),
            "HERALD_KAFKA_PORT": str(ports["kafka"]),
            "HERALD_KAFKA_CONTROLLER_PORT": str(ports["controller"]),
            "HERALD_HTTP_PORT": str(ports["http"]),
            "HERALD_SIM_PORT": str(ports["sim"]),
            "HERALD_SIM_SMTP_PORT": str(ports["smtp"]),
        }
    )
    settings = Settings.from_env(env)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(herald_cmd("up", *args), env=env, stdout=out,
                              stderr=subprocess.STDOUT)  # fmt: skip
    running: Up | None = None
    try:

        def started() -> str | None:
            text = log.read_text()
            assert up.poll() is None, f"herald up exited with {up.returncode}:\n{text}"
            return text if "Ctrl-C" in text else None

        lines = wait_for(started, timeout=180).splitlines()
        token = lines[lines.index("development token (tenant demo):") + 1]
        running = Up(f"http://127.0.0.1:{ports['http']}", token,
                     f"http://127.0.0.1:{ports['sim']}", lines)  # fmt: skip
        yield running
    except BaseException:
        print(log.read_text()[-6000:])  # pytest shows it with the failure
        raise
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(90)
    assert code == 0, log.read_text()[-3000:]
    assert not broker.is_running(settings)
    workers = list(running.worker_ports().values()) if running else []
    for port in (ports["http"], *workers, ports["sim"], ports["kafka"]):
        assert not broker.port_open(port), f"port {port} still open after Ctrl-C"


def forwarded(base: str) -> float:
    """The worker's herald_forwarded_total{what="state"}."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    prefix = 'herald_forwarded_total{what="state"} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_up_brings_the_system_up_and_ctrl_c_stops_it(tmp_path: Path, repo: Path) -> None:
    with herald_up(tmp_path, repo) as up:
        assert any(up.api in line for line in up.lines)
        # The ingress serves the public port; the worker its own, behind it.
        workers = up.worker_ports()
        assert list(workers) == ["worker"] and workers["worker"] != int(up.api.rsplit(":")[-1])
        assert httpx.get(f"{up.api}/readyz", timeout=5).json() == {"status": "ready"}
        worker = f"http://127.0.0.1:{workers['worker']}"
        assert httpx.get(f"{worker}/readyz", timeout=5).status_code == 200

        user = unique("up")
        message_id = up.post(user)
        wait_for(lambda: up.sent(up.api, message_id), timeout=30)
        sim = httpx.get(f"{up.sim}/_sim/messages", timeout=5).json()
        assert [m["to"] for m in sim] == [f"{user}@example.com"]


def test_up_with_two_workers_serves_every_message_through_each(tmp_path: Path, repo: Path) -> None:
    with herald_up(tmp_path, repo, "--workers", "2") as up:
        workers = up.worker_ports()
        assert list(workers) == ["worker", "worker-2"] and len(set(workers.values())) == 2
        bases = [f"http://127.0.0.1:{port}" for port in workers.values()]
        for base in bases:
            assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        users = [unique("up2") for _ in range(12)]
        ids = [up.post(user) for user in users]
        for message_id in ids:
            wait_for(lambda m=message_id: up.sent(up.api, m), timeout=60)
        for base in bases:
            assert all(up.sent(base, m) for m in ids), base
            # One group, partitions shared: each worker asked the other for some states.
            assert forwarded(base) > 0, base
        sim = httpx.get(f"{up.sim}/_sim/messages", timeout=5).json()
        assert sorted(m["to"] for m in sim) == sorted(f"{u}@example.com" for u in users)
        assert (tmp_path / "worker-2").is_dir()  # its own state directory
