"""Pytest plugin: a Redis for the test session, and a private key prefix per test.

Uses `$STAPI_GATEWAY_TEST_REDIS` (default redis://127.0.0.1:6379/15) when it answers; otherwise
starts a throwaway `redis-server` on a free port. Tests needing Redis fail rather than skip when
neither works: a silently skipped store test would hide exactly the bugs it exists to catch.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import redis

DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/15"
_INSTALL_HINT = (
    "no Redis answers at {url} and there is no `redis-server` on PATH to start one. "
    "Install it (`apt-get install redis-server`, `brew install redis`) or point "
    "STAPI_GATEWAY_TEST_REDIS at a Redis you may write to (e.g. redis://127.0.0.1:6379/15)."
)


def answers(url: str, timeout_s: float = 0.5) -> bool:
    """Whether a Redis answers a PING at `url` within `timeout_s`."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis the tests may write to, started for the session if none is running."""
    url = os.environ.get("STAPI_GATEWAY_TEST_REDIS", DEFAULT_TEST_REDIS)
    if answers(url):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(_INSTALL_HINT.format(url=url), pytrace=False)
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = f"redis://127.0.0.1:{port}/15"
    try:
        deadline = time.monotonic() + 10
        while not answers(started):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {port} did not start (exit code {proc.poll()})")
            time.sleep(0.05)
        yield started
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test; every key under it is deleted at teardown."""
    prefix = f"stapi-gw-test:{uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class RedisProcess:
    """A `redis-server` of a test's own, with AOF on, that the test can kill -9 and start again.

    `appendfsync always` is what the gateway's README asks for idempotency: every acknowledged
    write is on disk before Redis answers, so a kill loses nothing that was acknowledged.
    """

    def __init__(self, workdir: str, *, appendfsync: str = "always", appendonly: bool = True) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(_INSTALL_HINT.format(url="(a redis-server of the test's own)"), pytrace=False)
        self.binary, self.workdir = binary, workdir
        self.port = _free_port()
        self.appendfsync, self.appendonly = appendfsync, appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where the server listens."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) the server on the same port and data directory; wait until it answers."""
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.workdir, "--save", ""]
        args += ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", self.appendfsync]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not answers(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server on port {self.port} did not start (exit code {self.proc.poll()})")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync, as when a node dies."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        """Stop for good (test teardown)."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    """A started `RedisProcess` with AOF (appendfsync always) in the test's temporary directory."""
    server = RedisProcess(str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()
