"""What operators see of orders of unknown outcome: `stapi-gateway unknown-orders` and the metrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.gateway.services.orders.burst import order_for
from tests.gateways import gateway_client
from tests.order_faults import LosesOrderAnswers
from tests.served import run
from tests.upstreams import ProductSpec, build_provider


async def test_unknown_orders_command_lists_attempts_with_provider_and_age(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Two lost creates and one placed: the command (a real process) lists the two, oldest first, and exits 1."""
    app = build_provider([ProductSpec("eo")], name="acme")
    never = LosesOrderAnswers(app, rate=1.0, modes=["503"], before_place=True)
    async with gateway_client({"acme": never}, store=redis_url, store_prefix=redis_prefix) as client:
        for key in ("first", "second"):
            lost = await client.post("/products/acme:eo/orders", json=order_for(1), headers={"Idempotency-Key": key})
            assert lost.status_code == 504
        never.rate = 0.0
        placed = await client.post("/products/acme:eo/orders", json=order_for(2), headers={"Idempotency-Key": "ok"})
        assert placed.status_code == 201
        metrics = (await client.get("/metrics")).text
    config = tmp_path / "gw.yaml"
    config.write_text(
        f"gateway:\n  store: {redis_url}\n  store_prefix: '{redis_prefix}'\nproviders:\n  acme:\n    url: http://acme.test\n"
    )
    listed = await asyncio.to_thread(run, "unknown-orders", "--config", str(config), "--json")
    table = await asyncio.to_thread(run, "unknown-orders", "--config", str(config))
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert listed.returncode == 1, listed.stderr
    assert [row["idempotency_key"] for row in rows] == ["first", "second"]
    assert {row["provider"] for row in rows} == {"acme"}
    assert all(row["state"] == "unknown" and row["age_s"] >= 0 for row in rows)
    assert table.stdout.splitlines()[0].split()[:3] == ["attempt", "provider", "product"]
    assert 'stapi_gateway_order_outcomes_total{outcome="unknown"} 2.0' in metrics
    assert 'stapi_gateway_order_outcomes_total{outcome="placed"} 1.0' in metrics
