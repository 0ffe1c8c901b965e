"""Issue 16's first "done when", end to end: three `stapi-gateway serve` processes on one Redis keep a
provider's `order_rate_per_s: 2` together under 10 s of concurrent creates."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.rate_clock import CreateClock, most_in_a_second
from tests.served import free_port, served
from tests.upstreams import ProductSpec, build_provider, serve

ORDER = {
    "datetime": "2026-12-01T00:00:00Z/2026-12-10T00:00:00Z",
    "geometry": {"type": "Point", "coordinates": [13.4, 52.5]},
    "order_parameters": {},
}
DURATION_S = 10.0
CLIENTS_PER_PROCESS = 4


async def keep_creating(client: httpx.AsyncClient, until: float, statuses: list[int]) -> None:
    """Create orders one after another until `until`; after a refusal, pause a little (a polite client)."""
    while time.monotonic() < until:
        response = await client.post("/products/acme:eo/orders", json=ORDER)
        statuses.append(response.status_code)
        if response.status_code != 201:
            await asyncio.sleep(0.2)


async def test_three_processes_on_one_redis_keep_one_order_rate(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """12 clients creating for 10 s through 3 processes: the provider sees at most 3 creates in any
    second (the rate plus one token of burst), and every create is placed (201) or refused (429/503)."""
    provider = CreateClock(build_provider([ProductSpec("eo")], name="acme"))
    async with serve(provider) as acme_url:
        config = tmp_path / "gateway.yaml"
        config.write_text(
            f"gateway:\n  store: {redis_url}\n  store_prefix: '{redis_prefix}'\n  deadline_s: 2\n"
            f"providers:\n  acme:\n    url: {acme_url}\n    order_rate_per_s: 2\n"
        )
        ports = [free_port() for _ in range(3)]
        statuses: list[int] = []
        async with (
            served(ports[0], config=config) as one,
            served(ports[1], config=config) as two,
            served(ports[2], config=config) as three,
        ):
            until = time.monotonic() + DURATION_S
            await asyncio.gather(
                *(
                    keep_creating(gw.client, until, statuses)
                    for gw in (one, two, three)
                    for _ in range(CLIENTS_PER_PROCESS)
                )
            )
    assert set(statuses) <= {201, 429, 503}, statuses
    assert most_in_a_second(provider.arrivals) <= 3
    # Every create the provider saw was placed and answered, and the rate was used, not starved.
    assert statuses.count(201) == len(provider.arrivals)
    assert len(provider.arrivals) >= 10
