"""A gateway in front of the simulated Umbra Canopy (and, optionally, STAPI upstreams), in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.types import ASGIApp

from adapters.umbra.simulator import build_app
from adapters.umbra.simulator_state import SimConfig, SimState
from gateway.domain.events import EventSink
from gateway.settings.models import ProviderSettings, Settings
from tests.gateways import gateway_client, provider_settings

UMBRA_URL = "http://umbra.test"
WINDOW = "2030-01-01T00:00:00Z/2030-01-03T00:00:00Z"
POINT = {"type": "Point", "coordinates": [13.4, 52.5]}
LINE = {"type": "LineString", "coordinates": [[13.4, 52.5], [13.5, 52.6]]}


def fast_state(**config: Any) -> SimState:
    """A simulated Canopy that answers feasibilities at once and walks a status every 50 ms."""
    values: dict[str, Any] = {"feasibility_delay_s": 0.05, "status_step_s": 0.05, **config}
    return SimState(SimConfig(**values))


def umbra_provider(state: SimState, **overrides: Any) -> ProviderSettings:
    """The Umbra provider in front of the simulator at UMBRA_URL (its token endpoint there too)."""
    sim = state.config
    oauth = {
        "token_url": f"{UMBRA_URL}/oauth/token",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "audience": sim.audience,
        "token_request": "json",
    }
    values = {"id": "umbra", "url": UMBRA_URL, "adapter": "umbra", "oauth": oauth, "options": {"poll_interval_s": 0.02}}
    return ProviderSettings.model_validate({**values, **overrides})


def umbra_settings(
    state: SimState,
    others: Iterable[str] = (),
    *,
    products: Iterable[Mapping[str, Any]] = (),
    umbra: Mapping[str, Any] | None = None,
    **gateway: Any,
) -> Settings:
    """Settings with the Umbra provider and STAPI providers `others` at http://{id}.test."""
    gateway.setdefault("secret", "test-secret")
    providers = [umbra_provider(state, **(umbra or {})), *provider_settings(list(others))]
    return Settings.build(providers, products=products, **gateway)


@asynccontextmanager
async def umbra_gateway(
    state: SimState,
    others: Mapping[str, ASGIApp] | None = None,
    *,
    umbra_transport: httpx.AsyncBaseTransport | None = None,
    settings: Settings | None = None,
    events: EventSink | None = None,
    **kwargs: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a gateway whose `umbra` provider is the simulator holding `state` (`events`: the
    gateway's order status events)."""
    app = build_app(state=state)
    upstreams: dict[str, ASGIApp | httpx.AsyncBaseTransport] = {
        "umbra": umbra_transport or httpx.ASGITransport(app=app),
        "umbra#token": httpx.ASGITransport(app=app),
        **(others or {}),
    }
    settings = settings or umbra_settings(state, list(others or {}), **kwargs)
    async with gateway_client(upstreams, settings=settings, events=events) as client:
        yield client
