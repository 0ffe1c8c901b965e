"""Hot reload: a changed file swaps providers, an invalid one keeps the old set, requests in flight finish."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import structlog

from gateway.app import create_app
from gateway.settings import load_settings
from tests.faults import SlowApp
from tests.gateways import GATEWAY_URL, lifespan
from tests.upstreams import ProductSpec, build_provider


def write(path: Path, providers: list[str]) -> None:
    """A configuration naming the given providers at http://{id}.test."""
    entries = "".join(f"  {pid}:\n    url: http://{pid}.test\n" for pid in providers)
    path.write_text(f"gateway:\n  secret: s\n  deadline_s: 5\nproviders:\n{entries}")


async def provider_ids(client: httpx.AsyncClient) -> set[str]:
    """The providers the landing page lists."""
    return {p["id"] for p in (await client.get("/")).json()["providers"]}


async def until(check: Any, timeout_s: float = 10.0) -> None:
    """Wait (bounded) until an async check is true."""
    for _ in range(int(timeout_s / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never became true")


async def test_file_change_swaps_providers_and_invalid_file_keeps_them(tmp_path: Path) -> None:
    """Adding a provider takes effect without a restart; a broken file is logged and ignored."""
    config = tmp_path / "gateway.yaml"
    write(config, ["a"])
    upstreams = {pid: httpx.ASGITransport(app=build_provider([ProductSpec("eo")], name=pid)) for pid in "ab"}
    app = create_app(load_settings(config), transports=upstreams, watch_config=True)
    with structlog.testing.capture_logs() as logs:
        async with lifespan(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=GATEWAY_URL) as c:
            assert await provider_ids(c) == {"a"}
            write(config, ["a", "b"])

            async def both() -> bool:
                return await provider_ids(c) == {"a", "b"}

            await until(both)
            products = {p["id"] for p in (await c.get("/products")).json()["products"]}
            config.write_text("providers:\n  a:\n    url: not a url\n    colour: red\n")

            async def rejected() -> bool:
                return any(e["event"] == "config_reload_rejected" for e in logs)

            await until(rejected)
            still = await provider_ids(c)
    assert products == {"a:eo", "b:eo"}
    assert still == {"a", "b"}
    problems = [e["problem"] for e in logs if e["event"] == "config_problem"]
    assert any("providers.a.url" in p for p in problems)
    assert any("providers.a.colour" in p for p in problems)


async def test_request_in_flight_finishes_on_the_old_providers(tmp_path: Path) -> None:
    """A slow request started before a reload that drops its provider still gets its answer."""
    config = tmp_path / "gateway.yaml"
    write(config, ["slow", "a"])
    upstreams = {
        "slow": httpx.ASGITransport(app=SlowApp(delay_s=1.0)),
        "a": httpx.ASGITransport(app=build_provider([ProductSpec("eo")], name="a")),
    }
    app = create_app(load_settings(config), transports=upstreams, watch_config=True)
    async with lifespan(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=GATEWAY_URL) as c:
        in_flight = asyncio.create_task(c.get("/products"))
        await asyncio.sleep(0.2)
        write(config, ["a"])

        async def dropped() -> bool:
            return await provider_ids(c) == {"a"}

        await until(dropped)
        response = await in_flight
    assert response.status_code == 200
    assert "federation:missing" not in response.json()
