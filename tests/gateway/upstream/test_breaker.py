"""The circuit breaker's probe always ends: cancelled, starved of a slot or token, or answered."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from stapi_pydantic import Product

from gateway.obs.metrics import Metrics
from gateway.settings.models import ProviderSettings
from gateway.upstream.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from gateway.upstream.policy import GuardedTransport
from tests.faults import StaticApp, SwitchApp
from tests.gateways import gateway_client
from tests.upstreams import ProductSpec, build_provider
from tests.waiting import eventually

PRODUCTS = b'{"type":"ProductCollection","products":[],"links":[]}'


def test_a_probe_released_without_a_verdict_lets_the_next_call_probe() -> None:
    """`release` frees the half-open circuit's single probe; a plain call's release does not."""
    now = [0.0]
    breaker = CircuitBreaker(failures=1, open_s=5, clock=lambda: now[0])
    breaker.record(False)
    now[0] = 5.0
    probe = breaker.allow()
    assert probe is not None
    assert probe.probe
    assert breaker.allow() is None
    breaker.release(probe)
    assert breaker.state == HALF_OPEN
    again = breaker.allow()
    assert again is not None
    assert again.probe


async def _wait_until_healthy(client: httpx.AsyncClient) -> dict[str, Any]:
    """Poll /readyz until the provider counts as healthy again; its last body."""
    ready = await eventually(
        lambda: client.get("/readyz"),
        until=lambda r: r.json()["providers"]["acme"]["healthy"],
        what="a probe let through by the circuit",
    )
    return dict(ready.json())


async def test_a_cancelled_probe_reopens_the_circuit_which_recovers_and_readyz_agrees() -> None:
    """A probe cut off by the deadline counts as a failure: the circuit opens again (and /readyz
    says so while calls fail fast), then the next probe closes it when the provider is back."""
    switch = SwitchApp(build_provider([ProductSpec("eo")], name="acme"), mode="fail")
    overrides = {"retries": 0, "circuit_failures": 2, "circuit_open_s": 0.2, "timeout_s": 5}
    async with gateway_client({"acme": switch}, provider_overrides=overrides, deadline_s=2.0) as client:
        for _ in range(2):
            assert (await client.get("/products/acme:eo")).status_code == 502
        assert (await client.get("/readyz")).status_code == 503
        await _wait_until_healthy(client)

        switch.mode = "hang"
        probe = await client.get("/products/acme:eo")
        reopened = await client.get("/readyz")
        hits = switch.hits
        fast = await client.get("/products/acme:eo")
        assert switch.hits == hits, "an open circuit sends nothing"

        switch.mode = "ok"
        await _wait_until_healthy(client)
        recovered = await client.get("/products/acme:eo")
        closed = await client.get("/readyz")
    assert probe.status_code == 504
    assert reopened.status_code == 503
    assert reopened.json()["providers"]["acme"]["state"] == OPEN
    assert fast.status_code == 503
    assert fast.json()["code"] == "provider_unavailable"
    assert recovered.status_code == 200
    Product.model_validate(recovered.json())
    assert closed.status_code == 200
    assert closed.json()["providers"]["acme"]["state"] == CLOSED


class _Hold:
    """A provider whose first request holds its connection slot until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Hold the first request, answer the others at once."""
        self.calls += 1
        if self.calls == 1:
            await self.release.wait()
        await StaticApp(200, PRODUCTS)(scope, receive, send)


@pytest.mark.parametrize("starved_of", ["rate_token", "slot"])
async def test_a_probe_that_ends_waiting_for_our_own_limits_is_released(starved_of: str) -> None:
    """No slot or rate token before the budget ran out says nothing about the provider: the probe's
    turn is freed unjudged, so the next call can probe (before the fix the circuit stayed wedged)."""
    now = [0.0]
    breaker = CircuitBreaker(failures=1, open_s=5, clock=lambda: now[0])
    limits = {"rate_per_s": 1 / 600} if starved_of == "rate_token" else {"max_concurrent": 1}
    settings = ProviderSettings(id="acme", url="http://acme.test", timeout_s=0.1, retries=0, **limits)
    hold = _Hold()
    guarded = GuardedTransport(httpx.ASGITransport(app=hold), settings, breaker, Metrics())
    async with httpx.AsyncClient(transport=guarded, base_url="http://acme.test") as client:
        # Spend the only token, or keep the only slot busy, with a call made while closed.
        holder = asyncio.create_task(client.get("/products"))
        await asyncio.sleep(0.01)
        if starved_of == "rate_token":
            hold.release.set()
            assert (await holder).status_code == 200
        breaker.record(False, "5xx")
        now[0] = 5.0
        with pytest.raises(httpx.PoolTimeout):
            await client.get("/products")
        state, failures, probe = breaker.state, breaker.consecutive_failures, breaker.allow()
        hold.release.set()
        await holder
    assert state == HALF_OPEN
    assert failures == 1, "waiting for our own limits is no verdict on the provider"
    assert probe is not None
    assert probe.probe
