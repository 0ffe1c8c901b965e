"""Issue 15's end-to-end case: an Umbra task walks to DELIVERED while nobody polls the gateway, and a
subscribed receiver that is down at first, then fails, gets every status once per event id, in order,
signed, although the gateway serving it is killed with SIGKILL midway and another replica takes over.

Real processes on loopback: `stapi-gateway simulate --vendor umbra`, two `stapi-gateway serve`
replicas on one real Redis, and a uvicorn receiver in the test's own loop.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import uvicorn
import yaml
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.registry import simulated_vendors
from adapters.umbra.simulator_state import WALK
from adapters.umbra.statuses import TASK_STATUSES
from tests.served import free_port, served
from tests.waiting import eventually


class Receiver:
    """A webhook receiver that verifies each delivery and answers 500 to the first `failures` of them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.secret: str | None = None
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.rejected = 0
        self.app = Starlette(routes=[Route("/hooks", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        """Verify the signature (Standard Webhooks), then keep the event or fail on purpose."""
        body = await request.body()
        assert self.secret is not None
        event = Webhook(self.secret).verify(body, dict(request.headers))
        if self.failures > 0:
            self.failures -= 1
            self.rejected += 1
            return Response(status_code=500)
        self.received.append((request.headers["webhook-id"], event))
        return Response(status_code=204)


@asynccontextmanager
async def listening(app: Any, port: int) -> AsyncIterator[None]:
    """Serve `app` on 127.0.0.1:`port` until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the receiver did not start"
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


def _order() -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=1)
    window = "/".join(t.isoformat().replace("+00:00", "Z") for t in (start, start + timedelta(days=2)))
    return {"datetime": window, "geometry": {"type": "Point", "coordinates": [13.35, 52.51]}, "order_parameters": {}}


async def test_every_status_arrives_once_per_id_in_order_across_a_killed_replica(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """RECEIVED ... DELIVERED at the simulated Umbra become one signed `order.status` event each, in order."""
    sim_port, receiver_port, port_a, port_b = free_port(), free_port(), free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    provider = {"url": sim_url, **simulated_vendors()["umbra"].provider(sim_url), "status_poll_s": 0.3}
    gateway = {
        "store": redis_url,
        "store_prefix": redis_prefix,
        "deadline_s": 20,
        "webhooks": {"allow_private": True, "retry_initial_s": 0.2, "retry_max_s": 1.0, "timeout_s": 3},
    }
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"gateway": gateway, "providers": {"umbra": provider}}))
    receiver = Receiver(failures=2)
    async with served(sim_port, "--vendor", "umbra", "--status-step-s", "0.5", command="simulate"):
        # Neither replica's exit is checked: A is killed on purpose, and B's shutdown is not what this is about.
        async with served(port_a, config=config, check_exit=False) as replica_a:
            a = replica_a.client
            hook = {"url": f"http://127.0.0.1:{receiver_port}/hooks", "events": ["order.status"]}
            created = await a.post("/subscriptions", json=hook)
            assert created.status_code == 201, created.text
            receiver.secret = created.json()["secret"]
            placed = await a.post("/products/umbra:spotlight/orders", json=_order())
            assert placed.status_code == 201, placed.text
            order_id = placed.json()["id"]
            # The receiver is down while the first statuses come in; then replica A dies.
            await asyncio.sleep(2.0)
            replica_a.proc.send_signal(signal.SIGKILL)
            await replica_a.proc.wait()
        async with served(port_b, config=config, check_exit=False) as replica_b, listening(receiver.app, receiver_port):
            b = replica_b.client

            def delivered() -> bool:
                return any(e["data"]["provider:status"] == "DELIVERED" for _, e in receiver.received)

            await eventually(delivered, within_s=90, every_s=0.1, what="the DELIVERED status at the receiver")
            await asyncio.sleep(1.0)  # anything sent twice would arrive by now
            shown = (await b.get(f"/subscriptions/{created.json()['id']}/deliveries?limit=100")).json()
    deliveries = shown["deliveries"]
    assert {d["state"] for d in deliveries} == {"delivered"}
    assert len(deliveries) == len(WALK)
    # The first status was tried while the receiver was down: its attempts say so.
    first = next(d for d in deliveries if d["event_id"] == receiver.received[0][0])
    assert first["attempt_count"] >= 2
    assert any(a["error"] and "ConnectError" in a["error"] for a in first["attempts"])
    ids = [event_id for event_id, _ in receiver.received]
    unique = list(dict.fromkeys(ids))
    events = {event_id: event for event_id, event in receiver.received}
    vendor = [events[i]["data"]["provider:status"] for i in unique]
    assert vendor == list(WALK)
    assert [events[i]["data"]["status_code"] for i in unique] == [TASK_STATUSES[s].value for s in WALK]
    assert all(events[i]["data"]["order_id"] == order_id for i in unique)
    assert all(events[i]["type"] == "order.status" for i in unique)
    assert receiver.rejected == 2
    assert len(unique) == len(WALK), orjson.dumps(ids).decode()
