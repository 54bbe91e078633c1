"""The local Apache Kafka broker: fetch the official jars, format, start, stop.

Single node, KRaft (combined broker and controller), loopback only. The jars
come from Maven Central (`org.apache.kafka:kafka_2.13` and its runtime
dependencies) through Maven into `Settings.kafka_dist_dir`, once; broker data
lives under `$HERALD_HOME/kafka-data`. Start and stop are idempotent.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipeline.exceptions import BrokerError
from pipeline.settings import Settings

__all__ = [
    "LOG4J2",
    "POM",
    "SERVER_PROPERTIES",
    "BrokerPaths",
    "fetch",
    "is_running",
    "java_major_version",
    "paths",
    "port_open",
    "running_pid",
    "start",
    "stop",
]

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>herald</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>2.25.2</version>
    </dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
"""

SERVER_PROPERTIES = """# Written by herald: single-node KRaft broker on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=60000
"""


@dataclass(frozen=True)
class BrokerPaths:
    dist: Path
    data: Path
    config: Path
    log: Path
    pid: Path

    @property
    def libs(self) -> Path:
        return self.dist / "libs"


def paths(settings: Settings) -> BrokerPaths:
    # Absolute: Maven resolves relative paths against the pom, Java against its cwd.
    base = settings.home.resolve() / "broker"
    return BrokerPaths(
        dist=settings.kafka_dist_dir.resolve(),
        data=base / "data",
        config=base / "server.properties",
        log=base / "broker.log",
        pid=base / "broker.pid",
    )


def java_major_version() -> int:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java 17+ is needed to run the local Kafka broker: `java` not found")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise BrokerError(f"cannot read the Java version from: {out.strip()}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def fetch(settings: Settings) -> Path:
    """Fetch the Kafka jars once into the dist directory; return the libs folder."""
    p = paths(settings)
    marker = p.dist / ".complete"
    if marker.exists() and any(p.libs.glob("kafka_2.13-*.jar")):
        return p.libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (`mvn`) is needed once to fetch the Apache Kafka jars from Maven Central"
        )
    p.dist.mkdir(parents=True, exist_ok=True)
    (p.dist / "pom.xml").write_text(POM.format(version=settings.kafka_version))
    cmd = [
        mvn, "-q", "-B", "-f", str(p.dist / "pom.xml"),
        "dependency:copy-dependencies", "-DincludeScope=runtime",
        f"-DoutputDirectory={p.libs}",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BrokerError(
            f"fetching Kafka {settings.kafka_version} with Maven failed:\n"
            + (result.stdout + result.stderr)[-2000:]
        )
    if not any(p.libs.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"Maven finished but {p.libs} has no kafka_2.13 jar")
    marker.write_text(settings.kafka_version)
    return p.libs


def _java_cmd(p: BrokerPaths, settings: Settings, main: str, *args: str) -> list[str]:
    return [
        "java",
        f"-Xmx{settings.kafka_heap}",
        f"-Xms{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:TieredStopAtLevel=1",
        f"-Dlog4j2.configurationFile={p.config.parent / 'log4j2.properties'}",
        "-cp",
        f"{p.libs}/*",
        main,
        *args,
    ]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def running_pid(settings: Settings) -> int | None:
    pid_file = paths(settings).pid
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def is_running(settings: Settings) -> bool:
    return running_pid(settings) is not None and port_open(settings.kafka_port)


def start(settings: Settings, *, timeout: float = 90.0) -> str:
    """Start the local broker (fetching and formatting first); return its bootstrap address."""
    if is_running(settings):
        return settings.local_bootstrap
    if java_major_version() < 17:
        raise BrokerError("Apache Kafka 4 needs Java 17 or newer")
    for port in (settings.kafka_port, settings.kafka_controller_port):
        if port_open(port):
            raise BrokerError(f"port {port} is taken by another process")
    fetch(settings)
    p = paths(settings)
    p.data.mkdir(parents=True, exist_ok=True)
    p.config.write_text(
        SERVER_PROPERTIES.format(
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            data=p.data.resolve(),
        )
    )
    (p.config.parent / "log4j2.properties").write_text(
        LOG4J2.format(log=p.log.with_suffix(".server.log").resolve(), level="INFO")
    )
    if not (p.data / "meta.properties").exists():
        cluster_id = _cluster_id()
        fmt = subprocess.run(
            _java_cmd(p, settings, "kafka.tools.StorageTool", "format",
                      "-t", cluster_id, "-c", str(p.config)),
            capture_output=True, text=True,
        )  # fmt: skip
        if fmt.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{fmt.stdout}{fmt.stderr}")
    with p.log.open("ab") as log:
        proc = subprocess.Popen(
            _java_cmd(p, settings, "kafka.Kafka", str(p.config)),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the CLI; stopped by `herald broker stop`
        )
    p.pid.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"the broker exited with {proc.returncode}; see {p.log}")
        if port_open(settings.kafka_port) and _metadata_ready(settings.local_bootstrap):
            return settings.local_bootstrap
        time.sleep(0.3)
    stop(settings)
    raise BrokerError(f"the broker did not answer within {timeout:.0f}s; see {p.log}")


def _cluster_id() -> str:
    """A random Kafka cluster id: a UUID in URL-safe base64, as `kafka-storage random-uuid`
    prints it. Like Kafka's own, never starting with "-", which the storage tool would
    read as an option (one id in 64 did, and the broker then failed to format)."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _metadata_ready(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        md = admin.list_topics(timeout=2)
    except Exception:
        return False
    return bool(md.brokers)


def stop(settings: Settings, *, timeout: float = 30.0) -> bool:
    """Stop the local broker; True if one was running."""
    pid = running_pid(settings)
    pid_file = paths(settings).pid
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        _reap(pid)
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        _reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
