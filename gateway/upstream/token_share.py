"""One OAuth token for every replica: the shared entry, and the lock that lets one replica mint.

`ClientCredentials` (gateway/upstream/oauth.py) caches its token per process; with a
`SharedTokens` (the store, gateway/services/token_cache.py) every replica first looks for the
token another one minted, and only the replica holding the short mint lock asks the vendor.
The entry holds the access token and when to refresh it (wall clock), never the client secret.
If the store fails, a replica mints on its own rather than fail its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.base import DeliberateError

if TYPE_CHECKING:
    from gateway.upstream.oauth import SharedTokens

# How long one replica may hold the right to mint, and how long the others wait for its token.
MINT_LOCK_S = 15.0
MINT_WAIT_S = 10.0
_POLL_S = 0.05
_VISIBLE_ASCII = frozenset(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """A token, the seconds until it should be refreshed, and its shared form (None: not shared)."""

    value: str = field(repr=False)
    left_s: float
    stored: bytes | None = field(default=None, repr=False)
    # True when another replica minted it (a 401 to it then means it went stale).
    adopted: bool = False


class TokenShare:
    """The shared entry of one client (`key` names the client, not its secret)."""

    def __init__(
        self,
        tokens: SharedTokens,
        key: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = tokens
        self._key = key
        self._clock = clock
        self._wall = wall_clock

    async def obtain(self, mint: Callable[[], Awaitable[tuple[str, float]]]) -> Entry:
        """The shared token, or one `mint` makes (value, seconds until refresh) and shares."""
        tokens, key = self._tokens, self._key
        try:
            waited_until = self._clock() + MINT_WAIT_S
            while True:
                found = self.adopt(await tokens.get(key))
                if found is not None:
                    return found
                holder = await tokens.lock(key, MINT_LOCK_S)
                if holder is not None:
                    break
                if self._clock() >= waited_until:
                    return await self._alone(mint)  # the lock holder is stuck or gone
                await asyncio.sleep(_POLL_S)
        except DeliberateError:
            return await self._alone(mint)  # the store is down: mint alone rather than fail
        try:
            found = self.adopt(await tokens.get(key))  # minted while the lock changed hands
            return found if found is not None else await self._mint_shared(mint)
        finally:
            with contextlib.suppress(DeliberateError):
                await tokens.unlock(key, holder)

    async def _alone(self, mint: Callable[[], Awaitable[tuple[str, float]]]) -> Entry:
        value, left = await mint()
        return Entry(value, left)

    async def _mint_shared(self, mint: Callable[[], Awaitable[tuple[str, float]]]) -> Entry:
        value, left = await mint()
        stored = json.dumps({"access_token": value, "refresh_at": self._wall() + left}).encode()
        if left > 0:
            with contextlib.suppress(DeliberateError):
                await self._tokens.put(self._key, stored, left)
        return Entry(value, left, stored)

    def adopt(self, stored: bytes | None) -> Entry | None:
        """A shared entry, if it is well-formed and not yet due for refresh."""
        if stored is None:
            return None
        try:
            body = json.loads(stored)
            value, left = str(body["access_token"]), float(body["refresh_at"]) - self._wall()
        except (ValueError, TypeError, KeyError):
            return None
        if left <= 0 or not value or not set(value) <= _VISIBLE_ASCII:
            return None
        return Entry(value, left, stored, adopted=True)

    async def discard(self, stored: bytes) -> None:
        """Drop the shared entry if it still is the one the provider refused."""
        with contextlib.suppress(DeliberateError):
            await self._tokens.discard(self._key, stored)
