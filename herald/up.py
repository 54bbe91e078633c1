"""`herald up`: the embedded default. Broker, topics, simulator, one worker (or N with
`--workers N`, one consumer group) and the ingress in front of it; Ctrl-C stops all.

Children run as separate processes (`herald simulator`, `herald worker`, `herald
ingress`) so a crash in one is visible and each has its own event loop, exactly as
in production: the ingress serves the public port (HERALD_HTTP_PORT, where the
simulator's webhooks go) and the worker its own (HERALD_WORKER_HTTP_PORT, a free
one when unset), which the ingress asks for states and idempotency checks. With
`--workers N` the others join the same group, each on a free port of its own with its
own state directory (`$HERALD_HOME/worker-K`) and that port advertised to the group, so
a read reaching any of them finds the worker that holds the data. A broker this
command started is stopped again on exit; one that was already running is left alone.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.devstack.processes import free_port, simulator_env
from pipeline.devstack.secrets import webhook_secrets
from pipeline.exceptions import HeraldError
from pipeline.http.auth import issue_token
from pipeline.kafka import admin, broker
from pipeline.kafka.catalog import Catalog
from pipeline.settings import Settings

__all__ = ["WorkerChild", "child_env", "run", "wait_http", "worker_children"]


def child_env(settings: Settings, jwt_secret: str, worker_port: int = 0) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HERALD_HOME": str(settings.home),
            "HERALD_JWT_SECRET": jwt_secret,
            "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap,
            "HERALD_HTTP_PORT": str(settings.http_port),
        }
    )
    if worker_port:  # the worker behind the ingress
        env["HERALD_WORKER_HTTP_PORT"] = str(worker_port)
    if not any(k in os.environ for k in ("SENDGRID_BASE_URL", "SMTP_HOST")):
        # The embedded default: every provider is the simulator, and the webhook secrets
        # the two share are made for this run (those set in the environment are kept).
        env.update(simulator_env(settings.sim_port, settings.sim_smtp_port, settings.sim_host))
        env.update(webhook_secrets(os.environ))
        # The simulator's WhatsApp business number is the development tenant's.
        env.setdefault("WHATSAPP_WINDOW_TENANT", "demo")
    return env


@dataclass(frozen=True)
class WorkerChild:
    """One worker `herald up` starts: its name, HTTP port and environment."""

    name: str
    port: int
    env: dict[str, str]


def worker_children(
    settings: Settings, env: Mapping[str, str], first_port: int, count: int
) -> list[WorkerChild]:
    """`count` workers of one group: the first on `first_port` with the default state
    directory, the others (`worker-2`, ...) on free ports with directories of their own;
    each advertises its own port to the group (a URL set in the shell would be shared)."""
    out = []
    for k in range(1, count + 1):
        port = first_port if k == 1 else free_port()
        name = "worker" if k == 1 else f"worker-{k}"
        child = dict(env)
        child["HERALD_WORKER_HTTP_PORT"] = str(port)
        child["HERALD_ADVERTISED_URL"] = f"http://127.0.0.1:{port}"
        if k > 1:
            child["HERALD_WORKER_DATADIR"] = str(Path(settings.home) / name)
        out.append(WorkerChild(name, port, child))
    return out


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HeraldError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise HeraldError(f"{url} did not answer within {timeout:.0f}s")


def run(settings: Settings, workers: int = 1) -> int:
    if workers < 1:
        print("herald up: --workers must be at least 1", file=sys.stderr)
        return 2
    started_broker = False
    if settings.uses_local_broker:
        started_broker = not broker.is_running(settings)
        print(f"broker: starting Apache Kafka {settings.kafka_version} (KRaft, loopback)...")
        broker.start(settings)
    print(f"broker: {settings.bootstrap}")
    reports = admin.apply(Catalog.load(settings.topics_file), settings.bootstrap)
    bad = [r for r in reports if r.action == "mismatch"]
    if bad:
        for r in bad:
            print(f"topic mismatch: {r.name}: {r.detail}", file=sys.stderr)
        return 1
    print(f"topics: {len(reports)} ready")

    jwt_secret = settings.jwt_secret or secrets.token_urlsafe(48)
    worker_port = settings.worker_http_port or free_port()
    env = child_env(settings, jwt_secret, worker_port)
    Path(settings.home).mkdir(parents=True, exist_ok=True)
    herald = [sys.executable, "-m", "herald"]
    children: list[subprocess.Popen[bytes]] = []
    try:
        sim = subprocess.Popen([*herald, "simulator"], env=env)
        children.append(sim)
        wait_http(f"{settings.sim_base_url}/_sim/messages", 30, sim)
        print(f"simulator: {settings.sim_base_url} (GET /_sim/messages)")
        started = []  # all at once: they join the group in one rebalance
        for child in worker_children(settings, env, worker_port, workers):
            proc = subprocess.Popen([*herald, "worker"], env=child.env)
            children.append(proc)
            started.append((child, proc))
        for child, proc in started:
            wait_http(f"http://{settings.http_host}:{child.port}/readyz", 120, proc)
            print(f"{child.name}: http://{settings.http_host}:{child.port} (behind the ingress)")
        ingress = subprocess.Popen([*herald, "ingress"], env=env)
        children.append(ingress)
        wait_http(f"{settings.api_base_url}/readyz", 60, ingress)
        token = issue_token(
            jwt_secret, "demo",
            "notifications:send notifications:read users:manage templates:manage "
            "analytics:read",
        )  # fmt: skip
        print(f"api: {settings.api_base_url}  (metrics: {settings.api_base_url}/metrics)")
        print("development token (tenant demo):")
        print(token)
        print("Ctrl-C stops everything.", flush=True)
        _wait_for_signal(children)
    finally:
        for proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if started_broker:
            broker.stop(settings)
            print("broker: stopped")
    return 0


def _wait_for_signal(children: list[subprocess.Popen[bytes]]) -> None:
    stop = False

    def handler(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop:
        for proc in children:
            if proc.poll() is not None:
                print(f"{proc.args!r} exited with {proc.returncode}; stopping", file=sys.stderr)
                return
        time.sleep(0.5)
