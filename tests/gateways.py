"""Running the gateway in-process in front of ASGI upstreams, with its lifespan driven for real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pydantic import BaseModel
from starlette.types import ASGIApp, Message

from gateway.app import create_app
from gateway.domain.events import EventSink
from gateway.settings.models import ProviderSettings, Settings

GATEWAY_URL = "http://gateway.test"


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run an ASGI app's startup and shutdown, as a server would (httpx's transport does not)."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def receive() -> Message:
        return await inbox.get()

    async def send(message: Message) -> None:
        await outbox.put(message)

    # ensure_future: an ASGIApp is typed as returning an Awaitable, which create_task does not take.
    task = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        await task
        raise RuntimeError(f"startup failed: {started.get('message')}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


@asynccontextmanager
async def client_of(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` reached in process, with the app started (lifespan) for the block."""
    async with lifespan(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=GATEWAY_URL) as client:
        yield client


def provider_settings(ids: list[str], **overrides: Any) -> list[ProviderSettings]:
    """Providers at http://{id}.test, where tests route them to in-process apps."""
    return [ProviderSettings(id=pid, url=f"http://{pid}.test", title=f"Provider {pid}", **overrides) for pid in ids]


@asynccontextmanager
async def gateway_client(
    upstreams: Mapping[str, ASGIApp | httpx.AsyncBaseTransport],
    *,
    settings: Settings | None = None,
    provider_overrides: Mapping[str, Any] | None = None,
    events: EventSink | None = None,
    tracer_provider: Any = None,
    **gateway: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a gateway whose providers are the given ASGI apps (or fault transports); `events`
    receives the gateway's order status events; `tracer_provider` traces when `tracing=True`."""
    if settings is None:
        gateway.setdefault("secret", "test-secret")
        settings = Settings.build(provider_settings(list(upstreams), **(provider_overrides or {})), **gateway)
    transports = {
        pid: up if isinstance(up, httpx.AsyncBaseTransport) else httpx.ASGITransport(app=up)
        for pid, up in upstreams.items()
    }
    app = create_app(settings, transports=transports, events=events, tracer_provider=tracer_provider)
    async with client_of(app) as client:
        yield client


def hrefs(value: Any) -> list[str]:
    """Every `href` anywhere in a JSON document."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "href" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(hrefs(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(hrefs(item))
    return found


async def follow_get(
    client: httpx.AsyncClient, path: str, model: type[BaseModel] | None = None, limit_pages: int = 200
) -> list[dict[str, Any]]:
    """GET a paged resource and follow its GET `next` links (bounded); every page's body, each
    validated against `model` (a stapi-pydantic model) when given."""
    pages: list[dict[str, Any]] = []
    url: str | None = path
    while url is not None:
        response = await client.get(url.removeprefix(GATEWAY_URL))
        assert response.status_code == 200, response.text
        if model is not None:
            model.model_validate(response.json())
        pages.append(response.json())
        assert len(pages) <= limit_pages, "the next links never end"
        url = next((link["href"] for link in pages[-1].get("links", []) if link["rel"] == "next"), None)
    return pages
