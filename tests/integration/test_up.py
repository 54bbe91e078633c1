"""`herald up` (what ./run.sh runs): everything from nothing, then Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from pipeline.kafka import broker
from pipeline.settings import Settings
from tests.harness import free_port, herald_cmd, request_body, unique, wait_for

pytestmark = pytest.mark.slow


def test_up_brings_the_system_up_and_ctrl_c_stops_it(tmp_path: Path, repo: Path) -> None:
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
        up = subprocess.Popen(herald_cmd("up"), env=env, stdout=out, stderr=subprocess.STDOUT)
    worker_port = ports["http"]  # until `herald up` prints the worker's own
    try:

        def started() -> str | None:
            text = log.read_text()
            assert up.poll() is None, f"herald up exited with {up.returncode}:\n{text}"
            return text if "Ctrl-C" in text else None

        lines = wait_for(started, timeout=180)
        text = lines.splitlines()
        token = text[text.index("development token (tenant demo):") + 1]
        api = f"http://127.0.0.1:{ports['http']}"
        assert api in lines
        # The ingress serves the public port; the worker its own, behind it.
        [worker_line] = [line for line in text if line.startswith("worker: http://")]
        worker_port = int(worker_line.split()[1].rsplit(":", 1)[1])
        assert worker_port != ports["http"]
        assert httpx.get(f"{api}/readyz", timeout=5).json() == {"status": "ready"}
        assert httpx.get(f"http://127.0.0.1:{worker_port}/readyz", timeout=5).status_code == 200

        user = unique("up")
        resp = httpx.post(
            f"{api}/v1/notifications",
            json=request_body(user),
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert resp.status_code == 202
        message_id = resp.json()["messageId"]
        url = f"{api}/v1/notifications/{message_id}"

        def sent() -> bool:
            state = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
            if state.status_code != 200:
                return False
            return "SENT" in [h["status"] for h in state.json()["history"]]

        wait_for(sent, timeout=30)
        sim = httpx.get(f"http://127.0.0.1:{ports['sim']}/_sim/messages", timeout=5).json()
        assert [m["to"] for m in sim] == [f"{user}@example.com"]
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(90)
    assert code == 0, log.read_text()[-3000:]
    assert not broker.is_running(settings)
    for port in (ports["http"], worker_port, ports["sim"], ports["kafka"]):
        assert not broker.port_open(port), f"port {port} still open after Ctrl-C"
