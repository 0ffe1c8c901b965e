"""Several `stapi-gateway serve` processes sharing one Redis behave as one gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from adapters.registry import simulated_vendors
from adapters.umbra.simulator import build_app
from adapters.umbra.simulator_state import SimConfig, SimState
from tests.served import free_port, served, together
from tests.upstreams import ProductSpec, backend_of, build_provider, serve
from tests.waiting import eventually

WINDOW = "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}


async def test_two_processes_share_searches_and_idempotency(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """A search started on one process completes and is read on the other; a retried order is placed once."""
    acme = build_provider([ProductSpec("eo"), ProductSpec("sar", async_=True)], name="acme")
    async with serve(acme) as acme_url:
        config = tmp_path / "gateway.yaml"
        config.write_text(
            f"gateway:\n  store: {redis_url}\n  store_prefix: '{redis_prefix}'\n  search_refresh_s: 0.1\n"
            f"providers:\n  acme:\n    url: {acme_url}\n"
        )
        one_port, two_port = free_port(), free_port()
        async with (
            served(one_port, config=config) as first_process,
            served(two_port, config=config) as second_process,
        ):
            one, two = first_process.client, second_process.client
            created = await one.post(
                "/products/acme:sar/opportunities",
                json={"datetime": WINDOW, "geometry": POINT},
                headers={"Prefer": "respond-async"},
            )
            record_id = created.json()["id"]
            answer = await eventually(
                lambda: two.get(f"/searches/opportunities/{record_id}"),
                until=lambda r: r.json()["status"]["status_code"] == "completed",
                every_s=0.05,
                what="the search completed",
            )
            status = answer.json()["status"]["status_code"]
            collection = await two.get(f"/products/acme:sar/opportunities/{record_id}")
            order = {"datetime": WINDOW, "geometry": POINT, "order_parameters": {}}
            key = {"Idempotency-Key": "scale-out-1"}
            first = await one.post("/products/acme:eo/orders", json=order, headers=key)
            retried = await two.post("/products/acme:eo/orders", json=order, headers=key)
            # Cursors minted by one process are accepted by the other (the secret lives in Redis).
            page = (await one.get("/products?limit=1")).json()
            cursor_href = next(link["href"] for link in page["links"] if link["rel"] == "next")
            followed = await two.get(cursor_href.split(str(one_port), 1)[1])
    assert created.status_code == 201
    assert status == "completed"
    assert collection.status_code == 200
    # The whole result is kept; it is served in pages of the search's default limit.
    assert collection.json()["numberMatched"] == 25
    assert len(collection.json()["features"]) == 10
    assert first.status_code == retried.status_code == 201
    assert first.json()["id"] == retried.json()["id"]
    assert len(backend_of(acme).orders) == 1
    assert followed.status_code == 200


async def test_three_replicas_starting_together_make_one_token_exchange(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """Three `serve` processes started at once in front of the simulated Umbra (OAuth client
    credentials, ~50 exchanges a day): one token exchange for all of them, and each one answers."""
    state = SimState(SimConfig())
    async with serve(build_app(state=state)) as umbra_url:
        provider = {"url": umbra_url, **simulated_vendors()["umbra"].provider(umbra_url)}
        gateway = {"store": redis_url, "store_prefix": redis_prefix}
        config = tmp_path / "gateway.yaml"
        config.write_text(yaml.safe_dump({"gateway": gateway, "providers": {"umbra": provider}}))
        ports = [free_port() for _ in range(3)]
        async with together(*(served(port, config=config, check_exit=False) for port in ports)) as replicas:
            answers = await asyncio.gather(*(r.client.get("/orders") for r in replicas for _ in range(3)))
    assert [a.status_code for a in answers] == [200] * 9
    assert state.token_exchanges == 1
