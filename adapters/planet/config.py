"""The Planet adapter as the registry sees it: its `options:` model, how it is built, and its
simulated server for `stapi-gateway simulate --vendor planet` and `demo`."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters.client import RateGates
from adapters.planet.adapter import PlanetAdapter
from adapters.planet.simulator import DEMO_API_KEY, DEMO_PL_NUMBER, simulated_app

__all__ = ["PlanetOptions", "build", "demo_provider", "simulated_app"]


class PlanetOptions(BaseModel):
    """Keys under a Planet provider's `options:`.

    `pl_number` is required: Planet defaults an order's contract from the API key, but an
    imaging-window search needs it, so without it `planet:assured` could not search at all (and
    a key with several contracts would order under whichever Planet picks).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # pydantic runs patterns on Rust's regex, where `$` is the end of the text (no trailing newline).
    pl_number: str = Field(pattern=r"^PL-[A-Za-z0-9-]{1,40}$", description="Planet contract number (PL-...)")
    # How often a synchronous search reads the imaging-window search until it is DONE or FAILED.
    poll_interval_s: float = Field(default=0.5, gt=0, le=10)


def build(
    provider_id: str,
    client: httpx.AsyncClient,
    transport: httpx.AsyncBaseTransport,
    options: PlanetOptions,
    gates: RateGates,
) -> PlanetAdapter:
    """The adapter for one Planet provider (sends through the client: its headers carry the key)."""
    return PlanetAdapter(provider_id, client, options)


def demo_provider(url: str) -> dict[str, Any]:
    """The demo's provider in front of the simulator at `url` (its API root is under /tasking/v2)."""
    return {
        "adapter": "planet",
        "url": f"{url.rstrip('/')}/tasking/v2",
        "headers": {"Authorization": f"api-key {DEMO_API_KEY}"},
        "options": {"pl_number": DEMO_PL_NUMBER},
    }
