"""The adapters a provider's `adapter:` key may name: one table, one line per adapter.

Each adapter's folder under adapters/ holds its factory and the pydantic model of its
`options:` keys; adding an adapter is that folder and one line here. The settings validate a
provider's `adapter` and `options` against this table, so `check-config` knows every adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from adapters.base import ProviderAdapter
from adapters.client import RateGates
from adapters.planet import config as planet_config
from adapters.stapi import config as stapi_config
from adapters.umbra import config as umbra_config

OptionsT = TypeVar("OptionsT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class SimulatedVendor:
    """A vendor's simulated server, for `stapi-gateway simulate --vendor` and `demo`.

    `app(latency_s, status_step_s)` is the ASGI app (status_step_s None: the simulator's own pace
    of status steps); `provider(url)` the YAML keys of a demo provider in front of it served at `url`
    (besides `id`: e.g. `adapter`, `oauth`, `options`, or a `url` under the root).
    """

    title: str
    app: Callable[[float, float | None], Any]
    provider: Callable[[str], dict[str, Any]]
    # The product the demo's mixed federated product takes from this vendor (None: none).
    featured: str | None = None


@dataclass(frozen=True, slots=True)
class AdapterKind(Generic[OptionsT]):
    """An adapter as the gateway builds it: from the provider id, its pooled client, the client's
    transport (for adapters that send directly), the validated `options:` and the rate gates for
    the vendor's own per-endpoint limits (the gateway's, over its store); and, for a vendor that
    does not speak STAPI, its simulated server."""

    build: Callable[[str, httpx.AsyncClient, httpx.AsyncBaseTransport, OptionsT, RateGates], ProviderAdapter]
    options: type[OptionsT]
    simulated: SimulatedVendor | None = None


ADAPTERS: dict[str, AdapterKind[Any]] = {
    "stapi": AdapterKind(stapi_config.build, stapi_config.StapiOptions),
    "planet": AdapterKind(
        planet_config.build,
        planet_config.PlanetOptions,
        simulated=SimulatedVendor(
            "Planet Tasking (simulated optical)", planet_config.simulated_app, planet_config.demo_provider, "assured"
        ),
    ),
    "umbra": AdapterKind(
        umbra_config.build,
        umbra_config.UmbraOptions,
        simulated=SimulatedVendor(
            "Umbra Canopy (simulated SAR)", umbra_config.simulator, umbra_config.demo_provider, "spotlight"
        ),
    ),
}


def simulated_vendors() -> dict[str, SimulatedVendor]:
    """The adapters that come with a simulated vendor, by adapter name."""
    return {name: kind.simulated for name, kind in ADAPTERS.items() if kind.simulated is not None}
