"""The gateway's asynchronous search records as typed data, and their one stored form."""

from __future__ import annotations

# Stored results carry this in place of the gateway's base URL: the background work that fetches
# them has no request to take the client's base from, so it is put in on the way out.
BASE_PLACEHOLDER = "stapi-gateway-base:"
