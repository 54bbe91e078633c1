"""A local stack as child processes: the provider simulator, workers, an ingress.

The integration tests, the benchmarks and the kill drill run Herald exactly as an
operator does (`herald simulator`, `herald worker`, `herald ingress`), each a process
of its own on free loopback ports, against one broker. Several workers share one
consumer group (`HERALD_APP_ID`); each gets its own HTTP port and state directory.
With `HERALD_WORKER_HTTP_PORT` in its environment the stack is fronted by an ingress
on `HERALD_HTTP_PORT` (the public port, where providers' webhooks go) and every
worker serves its own HTTP on a port of its own behind it.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from pipeline.devstack.secrets import webhook_secrets
from pipeline.exceptions import HeraldError

__all__ = ["LocalStack", "free_port", "herald_cmd", "simulator_env", "stack_env", "wait_for"]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, every: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def herald_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "herald", *args]


def simulator_env(sim_port: int, smtp_port: int, host: str = "127.0.0.1") -> dict[str, str]:
    """Point every provider adapter at the simulator (HTTP and SMTP sink)."""
    base = f"http://{host}:{sim_port}"
    env = {
        name: base
        for name in (
            "SENDGRID_BASE_URL", "TWILIO_BASE_URL", "VONAGE_BASE_URL",
            "WHATSAPP_BASE_URL", "FCM_BASE_URL",
        )
    }  # fmt: skip
    env.update(
        {
            "HERALD_SIM_PORT": str(sim_port),
            "HERALD_SIM_SMTP_PORT": str(smtp_port),
            "SMTP_HOST": host,
            "SMTP_PORT": str(smtp_port),
        }
    )
    return env


def stack_env(home: Path, bootstrap: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a stack on free ports, with the short timings tests use.

    Its webhook secrets are made for this stack alone (never the shell's), and the
    simulator and every worker get the same ones.
    """
    env = dict(os.environ)
    env.update(simulator_env(free_port(), free_port()))
    env.update(webhook_secrets())
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
            # Short resilience timings: retry delays x0.25 (2, 4, 8 s become 0.5, 1,
            # 2 s), circuits probe after 2 s, due retries looked for every 0.1 s.
            "HERALD_RETRY_SCALE": "0.25",
            "HERALD_BREAKER_PROBE_INTERVAL": "2",
            "HERALD_SCHEDULER_TICK": "0.1",
            # FCM at 12/s over 6 partitions: 2/s per partition, so a test can see it.
            "HERALD_RATE_LIMITS": "sendgrid=600,smtp=100,twilio=200,vonage=100,"
            "whatsapp-cloud=200,twilio-whatsapp=100,fcm=12",
        }
    )
    env.update(extra or {})
    return env


@dataclass
class LocalStack:
    """Named child processes (`simulator`, `worker`, `worker-2`, ...) and their logs."""

    env: dict[str, str]
    home: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker_envs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def api(self) -> str:
        """The public API: the ingress when one runs, else the first worker's own."""
        return self.api_of("ingress" if "ingress" in self.procs else "worker")

    @property
    def sim(self) -> str:
        return f"http://127.0.0.1:{self.env['HERALD_SIM_PORT']}"

    def api_of(self, name: str) -> str:
        """The HTTP of `ingress` or of a worker (its own port behind an ingress)."""
        env = self.env_of(name)
        if name == "ingress":
            return f"http://127.0.0.1:{env['HERALD_HTTP_PORT']}"
        return f"http://127.0.0.1:{env.get('HERALD_WORKER_HTTP_PORT') or env['HERALD_HTTP_PORT']}"

    def env_of(self, name: str) -> dict[str, str]:
        """A worker's environment: the stack's, with its own HTTP port and state for `worker-N`."""
        if name in ("worker", "simulator", "ingress"):
            return self.env
        if name not in self.worker_envs:
            env = dict(self.env)
            # Behind an ingress the public port stays the ingress's (providers' callbacks).
            if env.get("HERALD_WORKER_HTTP_PORT"):
                env["HERALD_WORKER_HTTP_PORT"] = str(free_port())
            else:
                env["HERALD_HTTP_PORT"] = str(free_port())
            env["HERALD_WORKER_DATADIR"] = str(self.home / name)
            self.worker_envs[name] = env
        return self.worker_envs[name]

    def pid(self, name: str) -> int | None:
        proc = self.procs.get(name)
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self, name: str, timeout: float = 90.0) -> None:
        """Start `simulator`, `ingress`, `worker` or `worker-N` and wait until it answers."""
        command = name if name in ("simulator", "ingress") else "worker"
        env = self.env_of(name)
        log = (self.home / f"{name}.log").open("ab")
        proc = subprocess.Popen(herald_cmd(command), env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        url = (
            f"{self.sim}/_sim/messages" if command == "simulator" else f"{self.api_of(name)}/readyz"
        )

        def up() -> bool:
            if proc.poll() is not None:
                raise HeraldError(f"{name} exited with {proc.returncode}; see {log.name}")
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout)

    def stop(self, name: str, *, kill: bool = False) -> int | None:
        """SIGTERM (or SIGKILL) `name` and wait for it to exit; its exit code (-9 when a
        SIGTERM was not enough within 30 s), None when it was not running."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return None
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)

    def stop_all(self) -> None:
        # The ingress and workers first: without the simulator they would dead-letter
        # what is in flight.
        for name in sorted(self.procs, key=lambda n: n == "simulator"):
            self.stop(name)
