"""The replicas' shared OAuth tokens, kept in the store (gateway/upstream/oauth.py `SharedTokens`).

Some vendors allow few token exchanges a day (Umbra: about 50), so every replica uses the token
one of them minted. The store holds the access token and its refresh time until it is due,
never the client secret; the mint lock is a short `set_if_absent` key with its holder's nonce.
"""

from __future__ import annotations

import secrets

from gateway.store import Store

_PREFIX = "oauth-token:"


class StoreTokens:
    """`SharedTokens` over the gateway's store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, key: str) -> bytes | None:
        """The shared entry, None when there is none."""
        return await self._store.get(_PREFIX + key)

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Share an entry until it is due for refresh."""
        await self._store.set(_PREFIX + key, value, ttl_s)

    async def discard(self, key: str, value: bytes) -> None:
        """Remove the entry only if it still is the refused one (not its successor)."""
        await self._store.delete_if_equals(_PREFIX + key, value)

    async def lock(self, key: str, ttl_s: float) -> str | None:
        """The right to mint, or None if another replica holds it."""
        holder = secrets.token_hex(8)
        taken = await self._store.set_if_absent(f"{_PREFIX}{key}:lock", holder.encode(), ttl_s)
        return holder if taken else None

    async def unlock(self, key: str, holder: str) -> None:
        """Give the lock back, unless it expired and another replica took it."""
        await self._store.delete_if_equals(f"{_PREFIX}{key}:lock", holder.encode())
