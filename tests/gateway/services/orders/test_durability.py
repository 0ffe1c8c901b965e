"""The store idempotency depends on: checked at start-up, watched for resets, with replicas agreeing again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import redis

from gateway.settings.models import Settings
from tests.gateway.services.orders.burst import order_for
from tests.gateways import gateway_client, provider_settings
from tests.order_faults import LosesOrderAnswers
from tests.redis_server import RedisProcess
from tests.served import run
from tests.upstreams import ProductSpec, build_provider

DAY = 86_400


def provider() -> Any:
    """One provider with two products (so a product list of limit 1 has a next page)."""
    return build_provider([ProductSpec("eo"), ProductSpec("sar")], name="acme")


def next_href(body: dict[str, Any]) -> str:
    """The path and query of a body's next link."""
    href = next(link["href"] for link in body["links"] if link["rel"] == "next")
    return str(httpx.URL(href).raw_path.decode())


def test_serve_refuses_a_store_that_can_lose_keys_when_durability_is_required(redis_url: str, tmp_path: Path) -> None:
    """`store_durability: require` on a Redis without AOF: `serve` exits non-zero and says which setting is wrong."""
    config = tmp_path / "gw.yaml"
    config.write_text(
        f"gateway:\n  store: {redis_url}\n  store_prefix: durability-test\n  store_durability: require\n"
        "providers:\n  acme:\n    url: http://127.0.0.1:1\n"
    )
    result = run("serve", "--config", str(config), "--port", "0")
    assert result.returncode != 0
    assert "appendonly" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_durable_redis_passes_the_check(redis_process: RedisProcess) -> None:
    """AOF with appendfsync always and noeviction: the gateway starts with durability required."""
    async with gateway_client({"acme": provider()}, store=redis_process.url, store_durability="require") as client:
        ready = (await client.get("/readyz")).json()
    assert ready["store"]["durable"] is True
    assert ready["store"]["reset_detected_at"] is None


async def test_memory_store_is_reported_as_not_durable() -> None:
    """The embedded store forgets on restart, and readiness says so."""
    async with gateway_client({"acme": provider()}) as client:
        ready = (await client.get("/readyz")).json()
    assert ready["store"]["durable"] is False


async def test_a_reset_store_is_detected_and_replicas_agree_on_cursors_again(redis_url: str, redis_prefix: str) -> None:
    """Keys wiped under two running replicas: both detect it, count it, and accept each other's new cursors."""
    upstream = provider()
    settings = Settings.build(provider_settings(["acme"]), store=redis_url, store_prefix=redis_prefix)
    async with (
        gateway_client({"acme": upstream}, settings=settings) as a,
        gateway_client({"acme": upstream}, settings=settings) as b,
    ):
        old_cursor = next_href((await a.get("/products", params={"limit": 1})).json())
        wiper = redis.Redis.from_url(redis_url)
        wiper.delete(*wiper.scan_iter(match=f"{redis_prefix}*"))
        wiper.close()
        ready_a, ready_b = (await a.get("/readyz")).json(), (await b.get("/readyz")).json()
        new_cursor = next_href((await a.get("/products", params={"limit": 1})).json())
        await b.get("/readyz")
        on_b = await b.get(new_cursor)
        old_on_a = await a.get(old_cursor)
        metrics = (await a.get("/metrics")).text
    assert ready_a["store"]["reset_detected_at"] is not None
    assert ready_b["store"]["reset_detected_at"] is not None
    assert on_b.status_code == 200, on_b.text
    assert old_on_a.status_code == 200, old_on_a.text
    assert "stapi_gateway_store_resets_total 1.0" in metrics


async def test_order_ownership_and_journal_outlive_the_idempotency_key(redis_url: str, redis_prefix: str) -> None:
    """A placed order's owner and attempt live for the retention (90 days); its key for a day; an unknown's key too."""
    upstream = provider()
    faulty = LosesOrderAnswers(upstream, rate=0.0)
    async with gateway_client({"acme": faulty}, store=redis_url, store_prefix=redis_prefix) as client:
        placed = await client.post("/products/acme:eo/orders", json=order_for(1), headers={"Idempotency-Key": "p"})
        faulty.rate, faulty.modes, faulty.before_place = 1.0, ("503",), True
        lost = await client.post("/products/acme:eo/orders", json=order_for(2), headers={"Idempotency-Key": "u"})
    assert placed.status_code == 201
    assert lost.status_code == 504
    r = redis.Redis.from_url(redis_url)
    try:
        order_id = placed.json()["id"]
        ttl = {
            name: r.ttl(f"{redis_prefix}kv:{name}") for name in (f"order-owner:{order_id}", "idempotency:anonymous:p")
        }
        attempt_ttls = [r.ttl(k) for k in r.scan_iter(match=f"{redis_prefix}kv:order-attempt:*")]
        unknown_key_ttl = r.ttl(f"{redis_prefix}kv:idempotency:anonymous:u")
    finally:
        r.close()
    assert ttl[f"order-owner:{order_id}"] > 89 * DAY
    assert 0 < ttl["idempotency:anonymous:p"] <= DAY
    assert len(attempt_ttls) == 2
    assert all(t > 89 * DAY for t in attempt_ttls)
    assert unknown_key_ttl > 89 * DAY  # an unknown outcome's key is never freed by expiry
