"""The Umbra adapter as the gateway's registry sees it: its options, how it is built, its simulator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from adapters.client import RateGates
from adapters.umbra.simulator_state import SimConfig

if TYPE_CHECKING:
    from adapters.umbra.adapter import UmbraAdapter


class UmbraOptions(BaseModel):
    """Keys under an Umbra provider's `options:`.

    The per-second defaults are Umbra's published limits for creating tasks and feasibilities
    (docs.canopy.umbra.space/docs/rate-limiting, "limits change": hence options).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    create_task_per_s: float = Field(default=2.0, gt=0)
    feasibility_per_s: float = Field(default=2.0, gt=0)
    # How often a synchronous search polls its feasibility ("within a few minutes", Umbra says).
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)


def build(
    provider_id: str,
    client: httpx.AsyncClient,
    transport: httpx.AsyncBaseTransport,
    options: UmbraOptions,
    gates: RateGates,
) -> UmbraAdapter:
    """The adapter for one Umbra organisation (through the client: it carries the OAuth auth), its
    per-endpoint limits kept by the gateway's `gates`."""
    # Imported here: the adapter module imports this one for UmbraOptions.
    from adapters.umbra.adapter import UmbraAdapter

    return UmbraAdapter(provider_id, client, options, gates=gates)


def simulator(latency_s: float, status_step_s: float | None = None) -> Any:
    """The simulated Canopy the demo and `simulate --vendor umbra` serve (`status_step_s`: a task's walk)."""
    from adapters.umbra.simulator import app

    return app(latency_s, status_step_s)


def demo_provider(url: str) -> dict[str, Any]:
    """The demo provider in front of the simulated Canopy served at `url`."""
    sim = SimConfig()
    return {
        "adapter": "umbra",
        "oauth": {
            "token_url": f"{url}/oauth/token",
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "audience": sim.audience,
            "token_request": "json",
        },
        "options": {"poll_interval_s": 0.5},
    }
