"""Pure-ASGI middleware: request ids, the canonical log line and request metrics."""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import structlog
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.domain.access import ANONYMOUS
from gateway.domain.errors import (
    GatewayError,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    Unauthorized,
    UnsupportedMediaType,
)
from gateway.http.handlers import error_response
from gateway.upstream.context import request_id as upstream_request_id
from gateway.upstream.context import upstream_calls

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}\Z")

access_log = structlog.get_logger("gateway.access")


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.match(text) else None
    return None


def _operation(scope: Scope) -> str:
    """The route's endpoint name (low cardinality), once routing has run."""
    endpoint = scope.get("endpoint")
    return getattr(endpoint, "__name__", "unmatched")


def _providers(calls: list[dict[str, Any]]) -> dict[str, str]:
    """Each provider asked, with the outcome of its last call."""
    return {call["provider"]: call["outcome"] for call in calls}


class RequestContextMiddleware:
    """Gives every request an id (the client's `X-Request-ID` if sane), echoes it, logs one line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        # Pin the runtime: a configuration reload during this request must not change it midway.
        state["runtime"] = getattr(scope["app"].state, "runtime", None) if "app" in scope else None
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        calls: list[dict[str, Any]] = []
        upstream_calls.set(calls)
        upstream_request_id.set(request_id)  # sent to providers as X-Request-ID
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            operation = _operation(scope)
            runtime = state["runtime"]
            if runtime is not None:
                runtime.metrics.requests.labels(operation, str(status)).inc()
                runtime.metrics.request_seconds.labels(operation).observe(duration)
            access_log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                operation=operation,
                status=status,
                duration_ms=round(duration * 1000, 2),
                providers=_providers(calls),
                upstream_calls=len(calls),
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True  # a missing type is read as JSON; a declared other type is refused
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class BodyLimitMiddleware:
    """Refuses request bodies that are not JSON (415) or larger than `max_bytes` (413), unread,
    and bodies that have not fully arrived `timeout_s` after the app began reading them (408)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        refusal: GatewayError | None = None
        declared = _header(scope, b"content-length")
        if not _is_json(_header(scope, b"content-type")):
            refusal = UnsupportedMediaType("Request bodies must be JSON (Content-Type: application/json).")
        elif declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            refusal = PayloadTooLarge(f"The request body exceeds {self.max_bytes} bytes.")
        if refusal is not None:
            # Outside the app's exception handling, so the response is rendered here.
            request_id = str(scope.get("state", {}).get("request_id", "-"))
            await error_response(refusal, request_id)(scope, receive, send)
            return
        seen, complete, deadline = 0, False, 0.0

        async def counting_receive() -> Message:
            nonlocal seen, complete, deadline
            if complete:
                return await receive()  # after the body: disconnect listeners wait as long as they like
            if not deadline:
                deadline = asyncio.get_running_loop().time() + self.timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                # The connection is closed after the answer: the rest of a slow body is not awaited.
                detail = f"The request body did not arrive within {self.timeout_s:g} s."
                raise RequestTimeout(detail, headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise PayloadTooLarge(f"The request body exceeds {self.max_bytes} bytes.")
            return message

        await self.app(scope, counting_receive, send)


# Routes that orchestrators and tools reach without a client key.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/api"})


def _presented_key(scope: Scope) -> str | None:
    authorization = _header(scope, b"authorization")
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return _header(scope, b"x-api-key")


class AuthMiddleware:
    """Identifies the client by its API key (401 without one), and applies its rate (429)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        runtime = state.get("runtime") or scope["app"].state.runtime
        gatekeeper = runtime.gatekeeper
        if scope["path"] in PUBLIC_PATHS:
            # Reachable without a key (probes, tools); a key, if sent, may make it an operator's view.
            state["client"] = gatekeeper.identify(_presented_key(scope)) or ANONYMOUS
            await self.app(scope, receive, send)
            return
        client = gatekeeper.identify(_presented_key(scope))
        refusal: GatewayError | None = None
        if client is None:
            refusal = Unauthorized(
                "A valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY).",
                headers={"WWW-Authenticate": 'Bearer realm="stapi-gateway"'},
            )
        elif (rate := gatekeeper.rate_of(client)) and (wait := await runtime.rates.client_wait_s(client.id, *rate)) > 0:
            retry_after = str(max(1, math.ceil(wait)))
            refusal = RateLimited("Too many requests for this API key.", headers={"Retry-After": retry_after})
        if refusal is not None:
            await error_response(refusal, str(state.get("request_id", "-")))(scope, receive, send)
            return
        state["client"] = client
        structlog.contextvars.bind_contextvars(client=client.id)
        await self.app(scope, receive, send)


class SlashRedirect:
    """`/products/` is answered with a 307 to `/products` when that is a route.

    Starlette's own redirect (turned off in `gateway.app`) writes an absolute URL built from the
    Host header, so a forged Host would send the client to another site. This one is relative:
    it names no host, and starts with `/` and a letter or digit, so it cannot be read as
    `//other-host` either.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if len(path) > 1 and path.endswith("/"):
            stripped = path.rstrip("/")
            candidate = {**scope, "path": stripped}
            router = scope["app"].router
            if stripped[1:2].isalnum() and any(r.matches(candidate)[0] != Match.NONE for r in router.routes):
                query = scope.get("query_string", b"").decode("latin-1")
                location = quote(stripped, safe="/:@!$&'()*+,;=-._~") + (f"?{query}" if query else "")
                await Response(status_code=307, headers={"Location": location})(scope, receive, send)
                return
        await self.app(scope, receive, send)
