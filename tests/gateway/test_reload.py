"""Hot reload: a changed file swaps providers, an invalid one keeps the old set, requests in flight finish."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import structlog

from gateway.app import create_app
from gateway.reload import Reloader
from gateway.settings.loader import load_settings
from tests.faults import SlowApp
from tests.gateways import client_of
from tests.upstreams import ProductSpec, build_provider
from tests.waiting import eventually


def write(path: Path, providers: list[str], gateway: str = "") -> None:
    """A configuration naming the given providers at http://{id}.test (`gateway`: more lines of that section)."""
    entries = "".join(f"  {pid}:\n    url: http://{pid}.test\n" for pid in providers)
    path.write_text(f"gateway:\n  secret: s\n  deadline_s: 5\n{gateway}providers:\n{entries}")


def providers(ids: str) -> dict[str, httpx.AsyncBaseTransport]:
    """A real provider with one product `eo` per id, reached in process."""
    return {pid: httpx.ASGITransport(app=build_provider([ProductSpec("eo")], name=pid)) for pid in ids}


async def provider_ids(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> set[str]:
    """The providers the landing page lists."""
    return {p["id"] for p in (await client.get("/", headers=headers)).json()["providers"]}


async def test_file_change_swaps_providers_and_invalid_file_keeps_them(tmp_path: Path) -> None:
    """Adding a provider takes effect without a restart; a broken file is logged and ignored."""
    config = tmp_path / "gateway.yaml"
    write(config, ["a"])
    upstreams = providers("ab")
    app = create_app(load_settings(config), transports=upstreams, watch_config=True)
    with structlog.testing.capture_logs() as logs:
        async with client_of(app) as c:
            assert await provider_ids(c) == {"a"}
            write(config, ["a", "b"])

            async def both() -> bool:
                return await provider_ids(c) == {"a", "b"}

            await eventually(both)
            products = {p["id"] for p in (await c.get("/products")).json()["products"]}
            config.write_text("providers:\n  a:\n    url: not a url\n    colour: red\n")

            async def rejected() -> bool:
                return any(e["event"] == "config_reload_rejected" for e in logs)

            await eventually(rejected)
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
    upstreams = {"slow": httpx.ASGITransport(app=SlowApp(delay_s=1.0)), **providers("a")}
    app = create_app(load_settings(config), transports=upstreams, watch_config=True)
    async with client_of(app) as c:
        in_flight = asyncio.create_task(c.get("/products"))
        await asyncio.sleep(0.2)
        write(config, ["a"])

        async def dropped() -> bool:
            return await provider_ids(c) == {"a"}

        await eventually(dropped)
        response = await in_flight
    assert response.status_code == 200
    assert "federation:missing" not in response.json()


CLIENT_KEY = "reload-client-key-0123456789"


def write_with_clients(path: Path, providers: list[str], *, clients: bool = True, federated: bool = True) -> None:
    """A configuration with a federated product over the first two providers and, optionally, a client."""
    text = "gateway:\n  secret: s\n  deadline_s: 5\nproviders:\n"
    text += "".join(f"  {pid}:\n    url: http://{pid}.test\n" for pid in providers)
    if federated:
        text += f"products:\n  both:\n    members: [{providers[0]}:eo, {providers[1]}:eo]\n"
    if clients:
        text += f'clients:\n  only:\n    key: "{CLIENT_KEY}"\n    providers: ["*"]\n    products: ["*"]\n'
    path.write_text(text)


async def test_a_reload_never_turns_authentication_off(tmp_path: Path) -> None:
    """A file without clients is refused with a config_problem saying a restart is needed; keys stay required."""
    config = tmp_path / "gateway.yaml"
    write_with_clients(config, ["a", "b"])
    upstreams = providers("ab")
    app = create_app(load_settings(config), transports=upstreams, watch_config=True)
    with structlog.testing.capture_logs() as logs:
        async with client_of(app) as c:
            write_with_clients(config, ["a", "b"], clients=False)

            async def rejected() -> bool:
                return any(e["event"] == "config_reload_rejected" for e in logs)

            await eventually(rejected)
            without_key = await c.get("/products")
            with_key = await c.get("/products", headers={"X-API-Key": CLIENT_KEY})
    assert without_key.status_code == 401
    assert with_key.status_code == 200
    problems = [e["problem"] for e in logs if e["event"] == "config_problem"]
    assert any("authentication off" in p and "restart" in p for p in problems), problems
    assert not [e for e in logs if e["event"] == "config_reloaded"]


async def test_a_file_written_in_steps_is_applied_only_once_it_is_still(tmp_path: Path) -> None:
    """A rewrite whose first step lacks the federated product never shows: the product keeps
    answering (and keys stay required) throughout, then the finished file is applied once."""
    config = tmp_path / "gateway.yaml"
    write_with_clients(config, ["a", "b"])
    upstreams = providers("abc")
    app = create_app(load_settings(config), transports=upstreams)
    key = {"X-API-Key": CLIENT_KEY}
    with structlog.testing.capture_logs() as logs:
        async with client_of(app) as c:
            # A quiet period far longer than the pause between the two steps, so the test does not
            # depend on how fast this machine is.
            reloader = Reloader(str(config), app.state, poll_s=0.02, quiet_s=2.0)
            reloader.start()
            try:
                statuses: list[int] = []

                async def probe() -> bool:
                    statuses.append((await c.get("/products/both", headers=key)).status_code)
                    statuses.append((await c.get("/products")).status_code)
                    return await provider_ids(c, key) == {"a", "b", "c"}

                write_with_clients(config, ["a", "b", "c"], federated=False)  # the first step
                await asyncio.sleep(0.2)
                write_with_clients(config, ["a", "b", "c"])  # complete
                await eventually(probe)
            finally:
                await reloader.stop()
    assert statuses.count(200) == statuses.count(401) > 0
    assert set(statuses) == {200, 401}, statuses
    assert len([e for e in logs if e["event"] == "config_reloaded"]) == 1


async def test_webhook_settings_wait_for_a_restart(tmp_path: Path) -> None:
    """A reload that changes `gateway.webhooks` applies the rest and says the webhook keys need a restart."""
    config = tmp_path / "gateway.yaml"
    write(config, ["a"])
    upstreams = providers("ab")
    app = create_app(load_settings(config), transports=upstreams, watch_config=True)
    with structlog.testing.capture_logs() as logs:
        async with client_of(app) as c:
            write(config, ["a", "b"], gateway="  webhooks: {allow_private: true}\n")

            async def both() -> bool:
                return await provider_ids(c) == {"a", "b"}

            await eventually(both)
            refused = await c.post("/subscriptions", json={"url": "http://127.0.0.1/h", "events": ["order.status"]})
    assert any(e["event"] == "config_reload_webhooks_unchanged" for e in logs)
    assert refused.status_code == 422
