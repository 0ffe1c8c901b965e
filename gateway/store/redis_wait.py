"""Writes that count only once replicas hold them: the `wait_replicas` store URL option and WAIT.

`?wait_replicas=N[&wait_timeout_ms=T]` on any Redis store URL makes every write of the store be
followed by `WAIT N T` on the same connection (WAIT counts the replicas that acknowledged what
*that* connection wrote, so another connection would prove nothing). Both are sent as one
non-transactional pipeline: one round trip, as before, plus however long the replicas take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisClusterException
from redis.typing import EncodableT

WAIT_REPLICAS, WAIT_TIMEOUT_MS = "wait_replicas", "wait_timeout_ms"
DEFAULT_TIMEOUT_MS = 100
# WAIT blocks the connection: keep it well inside the 2 s socket timeout and a request's budget.
MAX_TIMEOUT_MS = 1000
# More replicas than any real deployment has is a typo, not a policy.
MAX_REPLICAS = 16

Command = Sequence[EncodableT]


@dataclass(frozen=True, slots=True)
class ReplicaWait:
    """How many replicas must acknowledge each write, and how long a write waits for them."""

    replicas: int
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    def check_socket_timeout(self, socket_timeout_s: float | None) -> None:
        """ValueError unless WAIT answers before the client's socket timeout takes Redis for dead."""
        if socket_timeout_s is not None and self.timeout_ms >= socket_timeout_s * 1000:
            raise ValueError(f"{WAIT_TIMEOUT_MS} ({self.timeout_ms}) must be shorter than socket_timeout")


def _whole(name: str, raw: str, highest: int) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= highest:
        raise ValueError(f"option {name!r} must be a whole number from 1 to {highest}, got {raw!r}")
    return int(raw)


def split_wait(url: str) -> tuple[str, ReplicaWait | None]:
    """`url` without the wait options, and the policy they name (None, and `url` as it was, if absent)."""
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    found: dict[str, str] = {}
    for name, raw in parse_qsl(parts.query, keep_blank_values=True):
        if name not in (WAIT_REPLICAS, WAIT_TIMEOUT_MS):
            kept.append((name, raw))
        elif name in found:
            raise ValueError(f"option {name!r} is given twice")
        else:
            found[name] = raw
    if not found:
        return url, None
    if WAIT_REPLICAS not in found:
        raise ValueError(f"option {WAIT_TIMEOUT_MS!r} needs {WAIT_REPLICAS!r}")
    wait = ReplicaWait(_whole(WAIT_REPLICAS, found[WAIT_REPLICAS], MAX_REPLICAS))
    if WAIT_TIMEOUT_MS in found:
        wait = ReplicaWait(wait.replicas, _whole(WAIT_TIMEOUT_MS, found[WAIT_TIMEOUT_MS], MAX_TIMEOUT_MS))
    return parts._replace(query=urlencode(kept)).geturl(), wait


async def write_then_wait(
    client: Redis | RedisCluster, wait: ReplicaWait, key: str, command: Command
) -> tuple[Any, int]:
    """Send one write touching `key`, then WAIT, on one connection: the write's answer and the acks."""
    if isinstance(client, RedisCluster):
        return await _on_cluster(client, wait, key, command)
    # A plain or Sentinel client's pipeline takes one pooled connection for all its commands.
    async with client.pipeline(transaction=False) as pipe:
        pipe.execute_command(*command)
        pipe.execute_command("WAIT", wait.replicas, wait.timeout_ms)
        answer, acked = await pipe.execute()
    return answer, int(acked)


async def _on_cluster(client: RedisCluster, wait: ReplicaWait, key: str, command: Command) -> tuple[Any, int]:
    # A cluster pipeline sends each node's commands on one connection of that node; WAIT has no
    # key, so it is pinned to the node that owns the write's slot.
    await client.initialize()
    node = client.get_node_from_key(key)
    async with client.pipeline(transaction=False) as pipe:
        pipe.execute_command(*command)
        pipe.execute_command("WAIT", wait.replicas, wait.timeout_ms, target_nodes=node)
        answer, acked = await pipe.execute()
    if client.get_node_from_key(key) is not node:
        # The write was redirected (MOVED/ASK) and retried on another connection than the WAIT.
        raise RedisClusterException(f"the slot of {key!r} moved during the write; its replication is unknown")
    return answer, int(acked)


async def script_then_wait(
    client: Redis | RedisCluster, wait: ReplicaWait, script: AsyncScript, key: str, args: Sequence[EncodableT]
) -> tuple[Any, int]:
    """Run a one-key script (EVALSHA; EVAL once if the server lacks it) followed by WAIT."""
    try:
        return await write_then_wait(client, wait, key, ("EVALSHA", script.sha, 1, key, *args))
    except NoScriptError:
        # Nothing ran; EVAL also caches the script on that node for the next EVALSHA.
        return await write_then_wait(client, wait, key, ("EVAL", script.script, 1, key, *args))
