"""The STAPI adapter as the gateway's registry sees it: its options model and how it is built."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict

from adapters.client import RateGates
from adapters.stapi.adapter import StapiAdapter


class StapiOptions(BaseModel):
    """Keys under a STAPI provider's `options:`. None yet: every provider key so far (url,
    headers, oauth, timeouts, limits, link bases) is one any adapter reads, so it stays a
    provider key."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def build(
    provider_id: str,
    client: httpx.AsyncClient,
    transport: httpx.AsyncBaseTransport,
    options: StapiOptions,
    gates: RateGates,
) -> StapiAdapter:
    """The adapter for one STAPI provider, sending straight to the client's transport."""
    return StapiAdapter(provider_id, client, transport=transport)
