"""OAuth2 client-credentials authentication for a provider's client (RFC 6749 §4.4).

`ClientCredentials` is an `httpx.Auth` to pass as a provider client's `auth=`. It fetches an
access token from the vendor's token endpoint through an injected client, caches it until
shortly before it expires, and attaches it as `Authorization: Bearer ...`. Some vendors cap
token mints per day, so concurrent requests needing a token share one token request, and a
provider's 401 answer triggers at most one refresh and one retry of that request.

Nothing secret leaves this module in a message: `TokenError` names only the token endpoint's
host, the status code and a short reason, and `repr()` shows neither the secret nor the token.
`secrets()` lists them for the provider's scrubber (adapters/scrub.py), which keeps a provider
that echoes request headers from showing them to clients.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

import httpx

from gateway.upstream.token_share import TokenShare

# Used when the token response has no `expires_in` (it is only RECOMMENDED by RFC 6749 §5.1).
DEFAULT_EXPIRES_IN_S = 3600.0
# An access token is a b64token (RFC 6750 §2.1); anything outside visible ASCII cannot go in a
# header and is refused rather than sent.
_VISIBLE_ASCII = frozenset(chr(c) for c in range(0x21, 0x7F))
# Tokens remembered for scrubbing after they were replaced: a provider may echo a request that
# was sent with the previous one.
_RECENT_TOKENS = 4


class SharedTokens(Protocol):
    """Token entries shared by every replica, with a short lock so that only one of them mints
    (implemented over the store in gateway/services/token_cache.py)."""

    async def get(self, key: str) -> bytes | None:
        """The shared entry, None when there is none."""
        ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        """Share an entry for `ttl_s` seconds."""
        ...

    async def discard(self, key: str, value: bytes) -> None:
        """Remove the entry only if it still is `value`."""
        ...

    async def lock(self, key: str, ttl_s: float) -> str | None:
        """The right to mint for `ttl_s` seconds (a holder token), None if another replica has it."""
        ...

    async def unlock(self, key: str, holder: str) -> None:
        """Give the right to mint back (only if `holder` still has it)."""
        ...


class TokenError(httpx.ConnectError):
    """The token endpoint gave no usable token, so the provider request was not sent.

    A `ConnectError` on purpose: the gateway reads a ConnectError as "provider not reached,
    nothing sent" (adapters/stapi/adapter.py reports it with maybe_received=False), and that is exactly
    the case, since the auth flow stops the request before any byte of it goes out. When the
    refresh after a provider's 401 fails, the request did reach the provider, but a 401 means it
    was refused unprocessed, so "nothing happened" still holds. The error is raised above the
    provider's transport, so GuardedTransport neither retries it nor counts it against the
    provider's circuit: the token endpoint is not the provider's API.
    """


@dataclass(frozen=True, slots=True, eq=False)
class _Token:
    """An access token and the clock reading from which it should no longer be used."""

    value: str = field(repr=False)
    refresh_at: float
    # Its entry as shared with the other replicas, and whether one of them minted it.
    stored: bytes | None = field(default=None, repr=False)
    adopted: bool = False


class ClientCredentials(httpx.Auth):
    """Bearer tokens from an OAuth2 client-credentials grant, cached and minted one at a time.

    `token_client` is used only to fetch tokens; its owner closes it. It should carry no `auth`
    of its own: the client authenticates with HTTP Basic as in RFC 6749 §2.3.1.
    """

    # The body is read before the flow starts so that a retry after a 401 can send it again.
    requires_request_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        audience: str | None = None,
        json_body: bool = False,
        token_client: httpx.AsyncClient,
        refresh_margin_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedTokens | None = None,
    ) -> None:
        url = httpx.URL(token_url)
        # The URL itself is left out of the message: its userinfo or query could hold credentials.
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("token_url must be an absolute http(s) URL")
        if not math.isfinite(refresh_margin_s) or refresh_margin_s < 0:
            raise ValueError("refresh_margin_s must be a finite number >= 0")
        self._token_url = url
        self._host = url.host
        self._client_id = client_id
        self._scope = scope
        self._audience = audience
        # RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined by ':' and base64-encoded.
        # Only this header is kept, not the secret on its own.
        credentials = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        self._basic = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
        # Kept only so that the scrubber can recognise them in what a provider echoes.
        self._client_secret = client_secret
        self._recent: deque[str] = deque(maxlen=_RECENT_TOKENS)
        self._form = {"grant_type": "client_credentials"}
        if scope is not None:
            self._form["scope"] = scope
        if audience is not None:
            self._form["audience"] = audience
        # A JSON body carries the credentials itself (Auth0's form, which Umbra documents).
        self._json = {**self._form, "client_id": client_id, "client_secret": client_secret} if json_body else None
        self._token_client = token_client
        # Replicas of the same client (never keyed by the secret) share one token.
        who = "\n".join([str(url), client_id, audience or "", scope or ""]).encode()
        key = hashlib.sha256(who).hexdigest()[:32]
        self._share = TokenShare(shared, key, clock=clock) if shared is not None else None
        self._refresh_margin_s = refresh_margin_s
        self._clock = clock
        self._token: _Token | None = None
        self._minting: asyncio.Task[_Token] | None = None

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(token_host={self._host!r}, client_id={self._client_id!r}, "
            f"scope={self._scope!r}, audience={self._audience!r})"
        )

    def secrets(self) -> Iterator[str]:
        """The credentials to scrub from what the provider sends: client id and secret, the Basic
        value, and the current and recent access tokens."""
        yield from (self._client_id, self._client_secret, self._basic)
        yield from self._recent

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Refuse: the token cache and single-flight minting live on an asyncio event loop."""
        raise RuntimeError("ClientCredentials works only with httpx.AsyncClient; the gateway is async only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send with a bearer token; after a 401 to a cached token, refresh once and retry once."""
        token, cached = await self._token_for(request)
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        # A token minted for this very request is as fresh as it gets: a 401 to it is not about
        # staleness, and minting again would only spend the vendor's mint quota.
        if response.status_code != 401 or not cached:
            return
        self._invalidate(token)
        if self._share is not None and token.stored is not None:
            await self._share.discard(token.stored)
        token, _ = await self._token_for(request)
        request.headers["Authorization"] = f"Bearer {token.value}"
        yield request

    def _invalidate(self, token: _Token) -> None:
        # Only the token that was refused: concurrent 401s to it must not discard its successor.
        if self._token is token:
            self._token = None

    async def _token_for(self, request: httpx.Request) -> tuple[_Token, bool]:
        """A usable token, and whether it came from the cache rather than from a mint."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token, True
        if self._minting is None:
            # One mint at a time, shared by every request that needs a token while it runs. It is
            # a task so that a cancelled request does not cancel the mint the others wait for.
            self._minting = asyncio.get_running_loop().create_task(self._obtain())
            self._minting.add_done_callback(self._minted)
        try:
            token = await asyncio.shield(self._minting)
        except TokenError as exc:
            # The mint's error is shared; each waiter raises its own, naming its own request.
            raise TokenError(str(exc), request=request) from None
        # Another replica's token may be as stale as a cached one; one minted here is not.
        return token, token.adopted

    async def _obtain(self) -> _Token:
        """The replicas' shared token, or one minted here (by the replica holding the mint lock)."""
        if self._share is None:
            return await self._mint()
        entry = await self._share.obtain(self._mint_for_share)
        self._token = token = _Token(entry.value, self._clock() + entry.left_s, entry.stored, entry.adopted)
        if entry.adopted:
            self._recent.append(entry.value)
        return token

    async def _mint_for_share(self) -> tuple[str, float]:
        token = await self._mint()
        return token.value, token.refresh_at - self._clock()

    def _minted(self, task: asyncio.Task[_Token]) -> None:
        if self._minting is task:
            self._minting = None
        # Marks the exception as retrieved even when every waiter was cancelled.
        if not task.cancelled():
            task.exception()

    async def _mint(self) -> _Token:
        """Fetch a token; TokenError, without the secret, the token or any header, if none."""
        started = self._clock()
        try:
            if self._json is not None:
                response = await self._token_client.post(
                    self._token_url, json=self._json, headers={"Accept": "application/json"}
                )
            else:
                response = await self._token_client.post(
                    self._token_url,
                    data=self._form,
                    headers={"Authorization": self._basic, "Accept": "application/json"},
                )
        except httpx.HTTPError as exc:
            # The cause is dropped: its request carries the Basic header.
            raise self._error(f"could not be reached ({exc.__class__.__name__})") from None
        if response.status_code != 200:
            # The body is not quoted: an error page may echo what it was sent.
            raise self._error(f"answered HTTP {response.status_code}")
        try:
            body = json.loads(response.content)
        except ValueError:
            raise self._error("answered HTTP 200 with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise self._error("answered HTTP 200 with JSON that is not an object")
        value = body.get("access_token")
        if not isinstance(value, str) or not value or not set(value) <= _VISIBLE_ASCII:
            raise self._error("answered HTTP 200 without a usable access_token")
        # token_type is REQUIRED by RFC 6749 §5.1 but some vendors omit it; absent means Bearer,
        # as in oauthlib. Any other type (mac, DPoP, ...) needs more than a header to use.
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise self._error("answered HTTP 200 with a token_type other than Bearer")
        lifetime = _lifetime(body.get("expires_in"))
        if lifetime is None:
            raise self._error("answered HTTP 200 with an invalid expires_in")
        # Counted from before the request, so network time only makes the estimate earlier. The
        # margin is capped at half the lifetime: a token living less than the margin would
        # otherwise be stale on arrival and every request would mint one.
        margin = min(self._refresh_margin_s, lifetime / 2)
        token = _Token(value, started + lifetime - margin)
        self._token = token
        self._recent.append(value)
        return token

    def _error(self, reason: str) -> TokenError:
        return TokenError(f"token endpoint {self._host} {reason}")


def _lifetime(expires_in: object) -> float | None:
    """Seconds from `expires_in`: the default when absent, None when not a positive number."""
    if expires_in is None:
        return DEFAULT_EXPIRES_IN_S
    if isinstance(expires_in, bool):
        return None
    if isinstance(expires_in, int | float):
        seconds = float(expires_in)
    elif isinstance(expires_in, str):  # some vendors send "3600"
        try:
            seconds = float(expires_in)
        except ValueError:
            return None
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None
