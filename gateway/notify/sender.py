"""One attempt to deliver an event: resolve, check, sign, POST, read a little of the answer.

The receiver's host is resolved at every attempt and each address it resolves to is checked
(unless the operator allows private addresses); the request then goes to the checked address
itself, with the name in `Host` and, for https, in the TLS server name, so a DNS answer that
changes between the check and the connection (rebinding) can't redirect it. Redirects are not
followed, the whole attempt is bounded by `timeout_s`, and at most `EXCERPT_BYTES` of a failed
answer's body are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks.webhooks import Webhook

from adapters.scrub import printable
from gateway.domain.addresses import non_public_address
from gateway.domain.events import Event
from gateway.notify.model import Subscription
from gateway.settings.models import WebhookSettings

EXCERPT_BYTES = 1024
ERROR_CHARS = 300

#: Resolves (host, port) to the addresses to connect to.
Resolver = Callable[[str, int], Awaitable[list[str]]]


class Refused(Exception):
    """The gateway will not send to this URL (scheme, or a non-public address); not the receiver's answer."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one attempt came to: the receiver's status, or why there is none; `refused` if never sent."""

    status: int | None
    error: str | None
    refused: bool
    duration_ms: float


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to now, through the event loop's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def signed_headers(subscription: Subscription, event: Event, body: bytes, now: float) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: the event's id, this attempt's time, the signature."""
    stamp = datetime.fromtimestamp(now, UTC)
    return {
        "content-type": "application/json",
        "webhook-id": event.id,
        "webhook-timestamp": str(int(now)),
        "webhook-signature": Webhook(subscription.secret).sign(event.id, stamp, body.decode()),
    }


class Sender:
    """Makes delivery attempts over one shared httpx client."""

    def __init__(self, client: httpx.AsyncClient, settings: WebhookSettings, resolver: Resolver = resolve) -> None:
        self.client = client
        self.settings = settings
        self.resolver = resolver

    async def send(self, subscription: Subscription, event: Event) -> SendResult:
        """Try once to deliver `event`; never raises for the receiver's or the network's failures."""
        started = time.perf_counter()
        status: int | None = None
        refused = False
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                status, error = await self._post(subscription, event)
        except Refused as exc:
            refused, error = True, f"refused: {exc}"
        except TimeoutError:
            error = f"timed out after {self.settings.timeout_s:g} s"
        except httpx.HTTPError as exc:
            error = _network_error(exc, subscription.url)
        except (OSError, UnicodeError) as exc:  # name resolution (gaierror, a bad label) and sockets
            error = _network_error(exc, subscription.url)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        return SendResult(status, error, refused, duration_ms)

    async def _post(self, subscription: Subscription, event: Event) -> tuple[int, str | None]:
        parts = urlsplit(subscription.url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise Refused("only http and https URLs with a host are delivered to")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = await self._checked_address(host, port)
        literal = f"[{address}]" if ":" in address else address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        body = event.body()
        headers = signed_headers(subscription, event, body, time.time())
        headers["host"] = parts.netloc
        # TLS is checked against the name, not the address the request goes to.
        extensions = {"sni_hostname": host} if parts.scheme == "https" and address != host else {}
        request = self.client.build_request("POST", target, content=body, headers=headers, extensions=extensions)
        response = await self.client.send(request, stream=True, follow_redirects=False)
        try:
            if response.is_success:
                return response.status_code, None
            excerpt = bytearray()
            async for chunk in response.aiter_raw():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
        finally:
            await response.aclose()
        text = printable(bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", "replace"), ERROR_CHARS)
        return response.status_code, f"HTTP {response.status_code}" + (f": {text}" if text.strip() else "")

    async def _checked_address(self, host: str, port: int) -> str:
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = await self.resolver(host, port)
        if not addresses:
            raise Refused(f"{host} resolves to no address")
        if not self.settings.allow_private:
            for address in addresses:
                if non_public_address(ipaddress.ip_address(address.split("%", 1)[0])):
                    raise Refused(
                        f"{host} resolves to a loopback, link-local or private address "
                        "(gateway.webhooks.allow_private allows these)"
                    )
        return addresses[0]


def _network_error(exc: BaseException, url: str) -> str:
    """A network failure as one line: its kind and message, never the URL's query (it may hold a token)."""
    message = str(exc)
    query = urlsplit(url).query
    if query:
        message = message.replace(query, "…")
    return printable(f"{type(exc).__name__}: {message}" if message else type(exc).__name__, ERROR_CHARS)
