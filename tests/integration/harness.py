"""Processes and helpers for integration tests: a real broker, simulator and worker."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from pipeline.auth import issue_token
from pipeline.up import simulator_env

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, every: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def herald_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


@dataclass
class Stack:
    """A simulator and a worker as child processes, on free ports, against one broker."""

    env: dict[str, str]
    home: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['HERALD_HTTP_PORT']}"

    @property
    def sim(self) -> str:
        return f"http://127.0.0.1:{self.env['HERALD_SIM_PORT']}"

    def token(self, tenant: str = "acme", scope: str = "notifications:send notifications:read",
              ttl_s: int = 3600) -> str:  # fmt: skip
        return issue_token(self.env["HERALD_JWT_SECRET"], tenant, scope, ttl_s=ttl_s)

    def headers(self, tenant: str = "acme", **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, **kw)}"}

    def start(self, name: str, timeout: float = 90.0) -> None:
        log = (self.home / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            herald_cmd(name), env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"{self.sim}/_sim/messages" if name == "simulator" else f"{self.api}/readyz"
        proc = self.procs[name]

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}; see {log.name}")
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout)

    def stop(self, name: str, *, kill: bool = False) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def stop_all(self) -> None:
        # The worker first: without its providers it would dead-letter what is in flight.
        for name in sorted(self.procs, key=lambda n: n != "worker"):
            self.stop(name)

    def fault(self, provider: str, **script: Any) -> None:
        resp = httpx.put(f"{self.sim}/_sim/faults/{provider}", json=script, timeout=5)
        assert resp.status_code == 204, resp.text

    def clear_faults(self) -> None:
        assert httpx.delete(f"{self.sim}/_sim/faults", timeout=5).status_code == 204

    def sim_messages(self, to: str | None = None) -> list[dict[str, Any]]:
        messages = httpx.get(f"{self.sim}/_sim/messages", timeout=5).json()
        return [m for m in messages if to is None or m["to"] == to]

    def state(self, message_id: str, tenant: str = "acme") -> httpx.Response:
        return httpx.get(
            f"{self.api}/v1/notifications/{message_id}", headers=self.headers(tenant), timeout=5
        )

    def wait_status(self, message_id: str, status: str, tenant: str = "acme",
                    timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        """The state once `status` is in its history (it may have moved on since)."""

        def reached() -> dict[str, Any] | None:
            resp = self.state(message_id, tenant)
            if resp.status_code == 200 and status in [h["status"] for h in resp.json()["history"]]:
                return dict(resp.json())
            return None

        return wait_for(reached, timeout)

    def wait_status_in(self, message_id: str, statuses: set[str], tenant: str = "acme",
                       timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        def reached() -> dict[str, Any] | None:
            resp = self.state(message_id, tenant)
            if resp.status_code == 200 and resp.json()["status"] in statuses:
                return dict(resp.json())
            return None

        return wait_for(reached, timeout)


def stack_env(home: Path, bootstrap: str) -> dict[str, str]:
    sim_port, smtp_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(simulator_env(sim_port, smtp_port))
    env.update(
        {
            "HERALD_HOME": str(home),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "HERALD_HTTP_PORT": str(free_port()),
            "HERALD_JWT_SECRET": secrets.token_urlsafe(40),
            "HERALD_WORKER_DATADIR": str(home / "worker"),
            "HERALD_SESSION_TIMEOUT": "6",
            "HERALD_REBALANCE_TIMEOUT": "6",
            "HERALD_LOG_LEVEL": "warn",
            # Short resilience timings so the suite stays fast: delays x0.25
            # (2, 4, 8 s become 0.5, 1, 2 s), circuits probe after 2 s.
            "HERALD_RETRY_SCALE": "0.25",
            "HERALD_BREAKER_PROBE_INTERVAL": "2",
            "HERALD_SCHEDULER_TICK": "0.1",
            # FCM at 12/s over 6 partitions: 2/s per partition, so a test can see it.
            "HERALD_RATE_LIMITS": "sendgrid=600,smtp=100,twilio=200,vonage=100,"
            "whatsapp-cloud=200,twilio-whatsapp=100,fcm=12",
        }
    )
    return env
