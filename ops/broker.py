"""A real Apache Kafka broker (KRaft, one combined broker+controller) with no Docker: a development tool for the
demo, the tests and `paysync kafka`, not part of the pipeline. `ops.kafka_cluster` runs several of these nodes
as one replicated cluster (`node_id`, `voters`, `replicas`).

The jars come from Maven Central through `mvn` into a cache folder the first time; storage is
formatted once; the broker runs as a detached `java` process on 127.0.0.1 whose pid and ports are
kept in the data folder. Data survives stop/start unless `fresh=True`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from paysync.paths import cache_dir, state_dir

KAFKA_VERSION = "3.9.1"
_ARTIFACTS = (
    ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
    ("org.slf4j", "slf4j-reload4j", "1.7.36"),
    ("ch.qos.reload4j", "reload4j", "1.2.25"),
)
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"


class BrokerError(Exception):
    """The broker could not be fetched, started or stopped; the message is one line saying why."""


@dataclass(frozen=True)
class BrokerConfig:
    """Where the local broker listens and keeps its data."""

    port: int = 9092
    controller_port: int = 9093
    data_dir: Path = field(default_factory=lambda: state_dir() / "kafka")
    jars_dir: Path = field(default_factory=lambda: cache_dir() / f"kafka-{KAFKA_VERSION}")
    heap: str = "768m"
    node_id: int = 1
    voters: str = ""  # controller.quorum.voters; "" = this node alone (1@127.0.0.1:controller_port)
    replicas: int = 1  # replication of internal topics and the default for new ones; min ISR = replicas - 1 (≥ 1)
    session_timeout_ms: int = 9000  # broker.session.timeout.ms: how soon the controller fences a dead broker

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.json"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"


@dataclass(frozen=True)
class BrokerStatus:
    """What `status` reports."""

    running: bool
    pid: int | None
    bootstrap: str | None
    data_dir: Path

    def describe(self) -> str:
        if self.running:
            return f"kafka running (pid {self.pid}) at {self.bootstrap}, data in {self.data_dir}"
        return f"kafka not running (data in {self.data_dir})"


def ensure_jars(jars_dir: Path) -> Path:
    """Resolve Kafka and its logging backend from Maven Central into `jars_dir` once; returns the lib folder."""
    libs = jars_dir / "libs"
    marker = jars_dir / "complete"
    if marker.exists() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is not installed: it is needed once to fetch the Kafka jars")
    jars_dir.mkdir(parents=True, exist_ok=True)
    deps = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in _ARTIFACTS
    )
    pom = (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>io.paysync</groupId><artifactId>kafka-runtime</artifactId><version>1</version>"
        f"<packaging>pom</packaging><dependencies>{deps}</dependencies></project>"
    )
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "pom.xml").write_text(pom, encoding="utf-8")
        staging = jars_dir / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        proc = subprocess.run(
            [mvn, "-B", "-q", _DEPENDENCY_PLUGIN, "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
            cwd=tmp, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            raise BrokerError(f"mvn could not fetch Kafka {KAFKA_VERSION}: {tail[0]}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
    marker.write_text(KAFKA_VERSION, encoding="utf-8")
    return libs


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline


def _read_pid_file(cfg: BrokerConfig) -> tuple[int, str] | None:
    """The (pid, bootstrap) the last start wrote, or None when the file is absent or unreadable."""
    try:
        info = json.loads(cfg.pid_file.read_text(encoding="utf-8"))
        return int(info["pid"]), str(info["bootstrap"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def status(cfg: BrokerConfig) -> BrokerStatus:
    """Whether the broker of this data folder runs, and where."""
    info = _read_pid_file(cfg)
    if info and _alive(info[0]):
        return BrokerStatus(True, info[0], info[1], cfg.data_dir)
    return BrokerStatus(False, None, None, cfg.data_dir)


def _server_properties(cfg: BrokerConfig) -> str:
    voters = cfg.voters or f"{cfg.node_id}@127.0.0.1:{cfg.controller_port}"
    min_isr = max(1, cfg.replicas - 1)
    return f"""process.roles=broker,controller
node.id={cfg.node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{cfg.port},CONTROLLER://127.0.0.1:{cfg.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{cfg.port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={cfg.data_dir / 'log'}
num.partitions=6
default.replication.factor={cfg.replicas}
min.insync.replicas={min_isr}
unclean.leader.election.enable=false
offsets.topic.replication.factor={cfg.replicas}
offsets.topic.num.partitions=12
transaction.state.log.replication.factor={cfg.replicas}
transaction.state.log.min.isr={min_isr}
broker.session.timeout.ms={cfg.session_timeout_ms}
broker.heartbeat.interval.ms={max(500, cfg.session_timeout_ms // 4)}
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.cleaner.dedupe.buffer.size=16777216
message.max.bytes=4194304
"""


_LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
"""


def _java(cfg: BrokerConfig, libs: Path, *args: str) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java is not installed: the Kafka broker needs Java 17 or newer on PATH")
    return [
        java, f"-Xms{cfg.heap}", f"-Xmx{cfg.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{cfg.data_dir / 'log4j.properties'}",
        f"-Dkafka.logs.dir={cfg.data_dir / 'logs'}", "-cp", f"{libs}/*", *args,
    ]


def wait_ready(bootstrap: str, timeout: float, alive: Callable[[], bool] | None = None, brokers: int = 1) -> None:
    """Return when an AdminClient's metadata from `bootstrap` lists `brokers` brokers; BrokerError after `timeout`."""
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "log_level": 0, "logger": quiet_logger()}
    admin = AdminClient(conf)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise BrokerError("the broker process exited during start-up")
        try:
            md = admin.list_topics(timeout=1.0)
            if len(md.brokers) >= brokers:
                return
        except Exception:  # noqa: BLE001 - not ready yet, any client error means "try again"
            pass
        time.sleep(0.2)
    if brokers > 1:
        raise BrokerError(f"the {brokers} brokers at {bootstrap} were not all in the metadata within {timeout:.0f} s")
    raise BrokerError(f"no answer from {bootstrap} within {timeout:.0f} s")


def quiet_logger() -> logging.Logger:
    log = logging.getLogger("paysync.broker.admin")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


def new_cluster_id() -> str:
    """A KRaft cluster id (22 characters of base64url) the storage tool accepts."""
    cluster_id = "-"
    while cluster_id.startswith("-"):  # a leading dash would be read as an option by the storage tool
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cluster_id


def _format_storage(cfg: BrokerConfig, libs: Path, props: Path, cluster_id: str) -> None:
    """Format the KRaft storage of a new data folder with `cluster_id` (every node of a cluster shares it)."""
    fmt = subprocess.run(
        _java(cfg, libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props), "--ignore-formatted"),
        capture_output=True, text=True, check=False,
    )
    if fmt.returncode != 0:
        tail = (fmt.stdout + fmt.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BrokerError(f"formatting Kafka storage failed: {tail[0]}")


def check_can_start(ports: list[int]) -> None:
    """BrokerError when a port is taken or Java is missing: the start-up errors a user can fix."""
    for port in ports:
        if not _port_free(port):
            raise BrokerError(f"port {port} on 127.0.0.1 is already in use; choose another with --port/--controller-port")
    if shutil.which("java") is None:
        raise BrokerError("Java is not installed: the Kafka broker needs Java 17 or newer on PATH")


def launch(cfg: BrokerConfig, cluster_id: str | None = None) -> subprocess.Popen[bytes]:
    """Write the node's config, format its storage if new, and start its `java` process (not waiting for it)."""
    libs = ensure_jars(cfg.jars_dir)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    (cfg.data_dir / "logs").mkdir(exist_ok=True)
    props = cfg.data_dir / "server.properties"
    props.write_text(_server_properties(cfg), encoding="utf-8")
    (cfg.data_dir / "log4j.properties").write_text(_LOG4J, encoding="utf-8")
    if not (cfg.data_dir / "log" / "meta.properties").exists():
        _format_storage(cfg, libs, props, cluster_id or new_cluster_id())
    out = open(cfg.data_dir / "logs" / "stdout.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        _java(cfg, libs, "kafka.Kafka", str(props)),
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    out.close()
    cfg.pid_file.write_text(
        json.dumps({"pid": proc.pid, "bootstrap": cfg.bootstrap, **{k: str(v) for k, v in asdict(cfg).items()}}),
        encoding="utf-8",
    )
    return proc


def abort(cfg: BrokerConfig, proc: subprocess.Popen[bytes], exc: BrokerError) -> BrokerError:
    """Stop a node that failed its start-up; the error to raise names its log and last error."""
    if proc.poll() is None:
        _terminate(proc.pid, grace=5)
    cfg.pid_file.unlink(missing_ok=True)
    return BrokerError(f"{exc}; see {cfg.log_file}{_last_error(cfg)}")


def start(cfg: BrokerConfig, fresh: bool = False, timeout: float = 90.0) -> tuple[str, bool]:
    """Start the broker (fetching jars and formatting storage as needed); returns (bootstrap, started_now).

    A broker already running for this data folder is left alone: `(bootstrap, False)`.
    """
    current = status(cfg)
    if current.running:
        if not fresh:
            return str(current.bootstrap), False
        stop(cfg)
    if fresh:
        shutil.rmtree(cfg.data_dir, ignore_errors=True)
    check_can_start([cfg.port, cfg.controller_port])
    proc = launch(cfg)
    try:
        wait_ready(cfg.bootstrap, timeout, alive=lambda: proc.poll() is None)
    except BrokerError as exc:
        raise abort(cfg, proc, exc) from None
    return cfg.bootstrap, True


def _last_error(cfg: BrokerConfig) -> str:
    try:
        lines = cfg.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if " ERROR " in line or "Exception" in line]
    return f" (last error: {errors[-1][:300]})" if errors else ""


def kill(cfg: BrokerConfig) -> bool:
    """SIGKILL the node (chaos: no controlled shutdown, its leaderships move only when the controller fences it)."""
    current = status(cfg)
    if not current.running or current.pid is None:
        return False
    _terminate(current.pid, grace=0)
    cfg.pid_file.unlink(missing_ok=True)
    return True


def _terminate(pid: int, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _alive(pid):
        time.sleep(0.1)


def stop(cfg: BrokerConfig, grace: float = 20.0) -> bool:
    """Stop the broker (SIGTERM, SIGKILL after `grace` seconds); returns whether one was running."""
    current = status(cfg)
    if not current.running or current.pid is None:
        cfg.pid_file.unlink(missing_ok=True)
        return False
    _terminate(current.pid, grace)
    cfg.pid_file.unlink(missing_ok=True)
    return True
