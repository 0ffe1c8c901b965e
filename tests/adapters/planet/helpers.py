"""Shared set-up of the Planet tests: the simulator, the adapter in front of it, gateway settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from adapters.planet.adapter import PlanetAdapter
from adapters.planet.config import PlanetOptions
from adapters.planet.simulator import DEMO_API_KEY, DEMO_PL_NUMBER, PlanetSimConfig, PlanetSimulator
from gateway.settings.models import ProviderSettings

URL = "http://planet.test/tasking/v2"
POINT = {"type": "Point", "coordinates": [13.350097, 52.514511]}
HEADERS = {"Authorization": f"api-key {DEMO_API_KEY}"}


def fast_sim(**overrides: Any) -> PlanetSimulator:
    """A simulator whose searches finish within ~20 ms and whose orders walk every 50 ms."""
    return PlanetSimulator(PlanetSimConfig(**{"search_step_s": 0.01, "order_step_s": 0.05, **overrides}))


def adapter_for(transport: httpx.AsyncBaseTransport, key: str = DEMO_API_KEY) -> PlanetAdapter:
    """The adapter over `transport`, as the gateway would build it (headers carry the key)."""
    client = httpx.AsyncClient(transport=transport, base_url=URL, headers={"Authorization": f"api-key {key}"})
    return PlanetAdapter("planet", client, PlanetOptions(pl_number=DEMO_PL_NUMBER, poll_interval_s=0.01))


def provider(**overrides: Any) -> ProviderSettings:
    """The Planet provider of a test gateway."""
    return ProviderSettings.model_validate(
        {
            "id": "planet",
            "url": URL,
            "adapter": "planet",
            "title": "Planet",
            "headers": HEADERS,
            "options": {"pl_number": DEMO_PL_NUMBER, "poll_interval_s": 0.01},
            **overrides,
        }
    )


def interval(days_ahead: float = 3.0) -> str:
    """A STAPI datetime interval from now to `days_ahead` days ahead."""
    now = datetime.now(UTC)
    end = now + timedelta(days=days_ahead)
    return f"{now.isoformat().replace('+00:00', 'Z')}/{end.isoformat().replace('+00:00', 'Z')}"


def search_body(**overrides: Any) -> dict[str, Any]:
    """An opportunity search on Planet's terms (a Point, three days)."""
    return {"datetime": interval(), "geometry": POINT, "limit": 10, **overrides}
