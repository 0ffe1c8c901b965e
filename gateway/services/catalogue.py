"""What the gateway knows about products: who owns them and which search modes they support.

A gateway product id is either `{provider}:{product}` (one provider's product) or the id of a
federated product from the configuration (several members). Either way a search runs over a
list of `Member`s. Capabilities come from each product's computed conformance (the declared
list in `/products` is unreliable in stapi-fastapi 0.8.0) and are cached briefly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from adapters.base import DeliberateError, NotFound
from adapters.schemas import CheckedSchema
from gateway.domain import ids
from gateway.domain.federation import ASYNC_CLASSES, SYNC_CLASS, Member, Target
from gateway.services.fanout import Deadline, call_one
from gateway.settings.models import FederatedProduct, Settings
from gateway.upstream.providers import Providers

T = TypeVar("T")

log = structlog.get_logger("gateway.catalogue")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Which opportunity search modes a provider product supports natively."""

    sync: bool
    async_: bool

    @property
    def searchable(self) -> bool:
        """Whether the product can search at all (the gateway emulates the mode it lacks)."""
        return self.sync or self.async_

    @classmethod
    def from_conformance(cls, classes: list[str]) -> Capabilities:
        """Read the modes off a product's conformance list."""
        return cls(sync=SYNC_CLASS in classes, async_=bool(ASYNC_CLASSES.intersection(classes)))


class Catalogue:
    """Resolves gateway product ids and caches provider products' capabilities."""

    def __init__(self, settings: Settings, providers: Providers) -> None:
        self._settings = settings
        self._providers = providers
        self._ttl_s = settings.gateway.catalogue_ttl_s
        self._capabilities: dict[str, tuple[float, Any]] = {}
        self._products: dict[str, tuple[float, Any]] = {}
        self._order_schemas: dict[str, tuple[float, Any]] = {}
        self._queryables: dict[str, tuple[float, Any]] = {}

    @property
    def providers(self) -> Providers:
        """The providers this catalogue resolves to."""
        return self._providers

    @property
    def federated(self) -> list[FederatedProduct]:
        """The configured federated products, in file order."""
        return list(self._settings.products.values())

    def target(self, product_id: str) -> Target:
        """The members behind a gateway product id; NotFound/UnknownProvider otherwise."""
        federated = self._settings.products.get(product_id)
        if federated is not None:
            members = [Member(self._providers.get(p), up) for p, up in federated.member_ids()]
            return Target(product_id, members, federated)
        parts = ids.split(product_id)
        if parts is None:
            raise NotFound(f"No product '{product_id}' exists: ids look like 'provider:product'.")
        return Target(product_id, [Member(self._providers.get(parts[0]), parts[1])])

    def member(self, member_id: str) -> Member:
        """The provider product behind a namespaced id `provider:product` (UnknownProvider if gone)."""
        parts = ids.split(member_id)
        if parts is None:
            raise NotFound(f"No product '{member_id}' exists: ids look like 'provider:product'.")
        return Member(self._providers.get(parts[0]), parts[1])

    async def _cached(self, cache: dict[str, tuple[float, Any]], key: str, load: Callable[[], Awaitable[T]]) -> T:
        hit = cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            value: T = hit[1]
            return value
        value = await load()
        if self._ttl_s > 0:
            cache[key] = (now + self._ttl_s, value)
        return value

    async def capabilities(self, member: Member, deadline: Deadline) -> Capabilities:
        """The member's search modes, from cache or from its provider."""
        adapter = member.provider.adapter

        async def load() -> Capabilities:
            call = lambda: adapter.product_conformance(member.product_id)  # noqa: E731
            return Capabilities.from_conformance(await call_one(member.provider.id, call, deadline))

        return await self._cached(self._capabilities, member.gateway_id, load)

    def learn_async_only(self, member: Member) -> None:
        """Remember that a product answered `Prefer: wait` with a search record.

        stapi-fastapi 0.8.0 lists the sync class for async-only products too, so only the
        answer tells; the lesson lasts as long as any cached capability.
        """
        if self._ttl_s > 0:
            self._capabilities[member.gateway_id] = (time.monotonic() + self._ttl_s, Capabilities(False, True))

    async def _fetched(
        self,
        cache: dict[str, tuple[float, Any]],
        member: Member,
        fetch: Callable[[str], Awaitable[T]],
        deadline: Deadline,
    ) -> T:
        """A member's document from `cache`, else `fetch`ed from its provider under the deadline."""
        call = lambda: fetch(member.product_id)  # noqa: E731
        return await self._cached(cache, member.gateway_id, lambda: call_one(member.provider.id, call, deadline))

    async def product(self, member: Member, deadline: Deadline) -> dict[str, Any]:
        """The member's product document as its provider serves it, from cache or fetched."""
        return await self._fetched(self._products, member, member.provider.adapter.get_product, deadline)

    async def order_schema(self, member: Member, deadline: Deadline) -> CheckedSchema:
        """The member's order-parameters JSON Schema with its compiled validator, from cache or fetched.

        Compiled once per fetch (adapters/schemas.py), so validating an order costs microseconds.
        """
        return await self._fetched(self._order_schemas, member, member.provider.adapter.order_parameters, deadline)

    async def queryables(self, member: Member, deadline: Deadline) -> CheckedSchema:
        """The member's queryables JSON Schema, from cache or fetched."""
        return await self._fetched(self._queryables, member, member.provider.adapter.queryables, deadline)

    async def verify_members(self, deadline_s: float) -> list[str]:
        """Look up every federated member once; log and return the ones that do not exist.

        `check-config` can only tell whether a member's provider is configured; whether the
        provider has the product is known only by asking it.
        """
        members = [(fp.id, m) for fp in self.federated for m in self.target(fp.id).members]
        deadline = Deadline(deadline_s)

        async def check(federated_id: str, member: Member) -> str | None:
            try:
                await self.product(member, deadline)
            except NotFound:
                log.error("federated_member_unknown", product=federated_id, member=member.gateway_id)
                return member.gateway_id
            except DeliberateError as exc:
                log.warning("federated_member_unchecked", product=federated_id, member=member.gateway_id, code=exc.code)
            return None

        results = await asyncio.gather(*(check(fid, m) for fid, m in members))
        return [r for r in results if r is not None]
