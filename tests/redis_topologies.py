"""Pytest plugin: a real Redis Sentinel setup and a real 3-node Redis Cluster on loopback free ports.

Both are built from `redis-server` alone (`redis-server --sentinel` is Sentinel; the cluster is
joined with CLUSTER ADDSLOTSRANGE and CLUSTER MEET), so no `redis-sentinel` or `redis-cli` is
needed. A missing binary fails the test with how to install it: a skipped topology test would
hide exactly the failover bugs it exists to catch.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from tests.redis_server import answers

SERVICE = "mymaster"
SLOTS = 16384
_INSTALL_HINT = (
    "`redis-server` (7.0 or newer) is not on PATH; the Sentinel and Cluster tests start their own. "
    "Install it (`apt-get install redis-server`, `brew install redis`)."
)


def _binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail(_INSTALL_HINT, pytrace=False)
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port; `with_bus` also needs port + 10000 free (a cluster node's bus)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if not with_bus or (port + 10000 < 65536 and _port_is_free(port + 10000)):
            return port
    pytest.fail("no free loopback port pair for a cluster node and its bus")


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=1.0)


def _ask(port: int, *command: str | int) -> Any:
    """One command to the server on `port`, parsed by redis-py; raises its errors."""
    client = _client(port)
    try:
        return client.execute_command(*command)  # type: ignore[no-untyped-call]
    finally:
        client.close()


class Processes:
    """Server processes started by one fixture, each killable by its port, all stopped at the end."""

    def __init__(self, workdir: Path) -> None:
        self.binary, self.workdir = _binary(), workdir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, port: int, args: list[str]) -> None:
        """Start `redis-server <args>` listening on `port` and wait until it answers PING."""
        proc = subprocess.Popen([self.binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[port] = proc
        _wait(lambda: answers(f"redis://127.0.0.1:{port}") or proc.poll() is not None, f"redis-server on port {port}")
        if proc.poll() is not None:
            pytest.fail(f"redis-server {' '.join(args)} exited with {proc.returncode}")

    def kill(self, port: int) -> None:
        """SIGKILL the server on `port`: no shutdown, no final sync to replicas, as when a node dies."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait()

    def stop_all(self) -> None:
        """Terminate every server still running (teardown)."""
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def _data_args(port: int, workdir: Path) -> list[str]:
    node_dir = workdir / f"node-{port}"
    node_dir.mkdir()
    return [
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(node_dir),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        # Diskless sync waits 5 s by default for more replicas to join; these tests have one.
        "--repl-diskless-sync-delay",
        "0",
    ]


class SentinelSetup:
    """One primary, one replica and three sentinels (quorum 2) watching service `mymaster`."""

    def __init__(self, workdir: Path) -> None:
        self.processes = Processes(workdir)
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def url(self) -> str:
        """The gateway's store URL for this setup, database 0."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        """Start the data nodes, wait for the replica to sync, then the sentinels, until they see both."""
        workdir = self.processes.workdir
        self.processes.start(self.primary_port, _data_args(self.primary_port, workdir))
        replica_args = [*_data_args(self.replica_port, workdir), "--replicaof", "127.0.0.1", str(self.primary_port)]
        self.processes.start(self.replica_port, replica_args)
        _wait(lambda: self._info(self.replica_port).get("master_link_status") == "up", "the replica to sync")
        for port in self.sentinel_ports:
            conf = workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 400\n"
                f"sentinel failover-timeout {SERVICE} 3000\n"
            )
            self.processes.start(port, [str(conf), "--sentinel"])
        _wait(self._sentinels_ready, "the sentinels to find the replica and each other")

    def _info(self, port: int) -> dict[str, object]:
        client = _client(port)
        try:
            info: dict[str, object] = client.info()
            return info
        except (redis.RedisError, OSError):
            return {}
        finally:
            client.close()

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            try:
                state = _ask(port, "SENTINEL MASTER", SERVICE)
            except (redis.RedisError, OSError):
                return False
            if int(state.get("num-slaves", 0)) < 1 or int(state.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def primary(self) -> int:
        """The port the sentinels currently name as primary."""
        _, port = _ask(self.sentinel_ports[0], "SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def kill_primary(self) -> int:
        """SIGKILL the current primary; the port it listened on."""
        port = self.primary()
        self.processes.kill(port)
        return port

    def wait_for_promotion(self, old_primary: int) -> int:
        """Wait until the sentinels name another primary and it answers as one; its port."""
        _wait(lambda: self.primary() != old_primary, "the sentinels to promote the replica")
        new = self.primary()
        _wait(lambda: self._info(new).get("role") == "master", "the promoted replica to take writes")
        return new


class ClusterSetup:
    """Three primaries, no replicas, the 16384 slots split between them."""

    def __init__(self, workdir: Path) -> None:
        self.processes = Processes(workdir)
        self.ports = [free_port(with_bus=True) for _ in range(3)]

    @property
    def url(self) -> str:
        """The gateway's store URL naming every node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        """Start the nodes, give each a third of the slots, introduce them, wait for cluster_state:ok."""
        workdir = self.processes.workdir
        for port in self.ports:
            args = [*_data_args(port, workdir), "--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
            self.processes.start(port, [*args, "--cluster-config-file", f"nodes-{port}.conf"])
        bounds = [SLOTS * i // len(self.ports) for i in range(len(self.ports) + 1)]
        for i, port in enumerate(self.ports):
            _ask(port, "CLUSTER ADDSLOTSRANGE", bounds[i], bounds[i + 1] - 1)
            if i:
                _ask(port, "CLUSTER MEET", "127.0.0.1", self.ports[0])
        _wait(lambda: all(self._state(port) == "ok" for port in self.ports), "the cluster to agree (cluster_state:ok)")

    def _state(self, port: int) -> str:
        try:
            info = _ask(port, "CLUSTER INFO")
        except (redis.RedisError, OSError):
            return "unreachable"
        # redis-py parses CLUSTER INFO into a dict of its fields.
        return str(info.get("cluster_state", "")) if isinstance(info, dict) else ""


SetupT = TypeVar("SetupT", SentinelSetup, ClusterSetup)


@contextmanager
def running(setup: SetupT) -> Iterator[SetupT]:
    """`setup` started for the block, and every process it started stopped after it (also when starting failed)."""
    try:
        setup.start()
        yield setup
    finally:
        setup.processes.stop_all()


@pytest.fixture(scope="session")
def redis_sentinel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Sentinel-managed Redis shared by the session's tests (each uses its own key prefix)."""
    with running(SentinelSetup(tmp_path_factory.mktemp("sentinel"))) as setup:
        yield setup.url


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[SentinelSetup]:
    """A Sentinel setup of the test's own, whose primary it may kill."""
    with running(SentinelSetup(tmp_path)) as setup:
        yield setup


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-node Redis Cluster shared by the session's tests (each uses its own key prefix)."""
    with running(ClusterSetup(tmp_path_factory.mktemp("cluster"))) as setup:
        yield setup.url
