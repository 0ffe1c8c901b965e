"""Two API clients for the tests of what one client may see or do of another's: A, whose key is
configured as its SHA-256, and B, whose key is configured as it is."""

from __future__ import annotations

import hashlib
from typing import Any

KEY_A = "key-of-client-a-0123456789"
KEY_B = "key-of-client-b-0123456789"
AS_A = {"X-API-Key": KEY_A}
AS_B = {"X-API-Key": KEY_B}


def two_clients(a_providers: tuple[str, ...] = ("*",), a_products: tuple[str, ...] = ("*",)) -> list[dict[str, Any]]:
    """The `clients:` entries of A (scoped as given) and B (every provider and product)."""
    a_key = hashlib.sha256(KEY_A.encode()).hexdigest()
    return [
        {"id": "client-a", "key_sha256": a_key, "providers": list(a_providers), "products": list(a_products)},
        {"id": "client-b", "key": KEY_B, "providers": ["*"], "products": ["*"]},
    ]
