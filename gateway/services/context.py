"""One request as every service sees it: built once per request by gateway/http/context.py, so
services never see HTTP (only gateway/http/ knows Starlette)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from adapters.base import NotFound, UpstreamNotFound
from gateway.domain import merge
from gateway.domain.access import Client
from gateway.domain.errors import Forbidden
from gateway.domain.federation import ProviderRef, Target
from gateway.domain.links import LinkRewriter
from gateway.domain.merge import Position
from gateway.services import fanout
from gateway.services.fanout import Deadline

if TYPE_CHECKING:
    from gateway.runtime import Runtime
    from gateway.upstream.providers import Provider

T = TypeVar("T")


@dataclass(slots=True)
class RequestContext:
    """The runtime pinned for this request (a reload swaps it only for later ones), who asks, and
    where the client reached the gateway (`gateway_base`, what every link is rewritten to)."""

    runtime: Runtime
    client: Client
    gateway_base: str
    _deadline: Deadline | None = field(default=None, repr=False)

    @property
    def deadline(self) -> Deadline:
        """This request's one time budget, shared by all its steps.

        Started on first use, not when the request arrives: reading a slow body does not spend it.
        """
        if self._deadline is None:
            self._deadline = Deadline(self.runtime.settings.gateway.deadline_s)
        return self._deadline

    def rewriter(self, provider: ProviderRef) -> LinkRewriter:
        """The link rewriter from this provider to the gateway as the client sees it."""
        return provider.rewriter(self.gateway_base)

    async def ask(self, provider: ProviderRef, call: Callable[[], Awaitable[T]], absent: str) -> T:
        """One provider call under the request's deadline; its 404 said in the gateway's words (`absent`)."""
        try:
            return await fanout.call_one(provider.id, call, self.deadline)
        except UpstreamNotFound:
            raise UpstreamNotFound(provider.id, absent) from None

    def target(self, product_id: str) -> Target:
        """The product the request addresses, narrowed to what its client may use.

        A federated product with no member the client may use is absent (404), like any product
        it cannot see; a product outside the client's scope is a 403.
        """
        target = self.runtime.catalogue.target(product_id)
        visible = visible_target(self.client, target)
        if visible is None:
            raise NotFound(f"No product '{product_id}' exists.")
        if not may_use(self.client, target):
            raise Forbidden(f"This API key does not give access to '{product_id}'.")
        return visible

    def visible_providers(self) -> list[Provider]:
        """The providers the client may use, in configuration order."""
        return [p for p in self.runtime.providers if self.client.may_use_provider(p.id)]

    def sees(self, owner: str | None) -> bool:
        """Whether the client may see something owned by `owner` (everyone sees all when auth is off)."""
        return not self.runtime.gatekeeper.enabled or owner == self.client.id

    def positions(self, kind: str, cursor: str | None, sources: list[str], limit: int) -> dict[str, Position]:
        """Where each source of a merged list stands: from the client's cursor, or at the start."""
        if cursor:
            return merge.load_state(self.runtime.cursors.decode(kind, cursor), sources)
        return merge.start(sources, limit)

    def next_cursor(self, kind: str, after: dict[str, Position]) -> str | None:
        """The signed cursor for the positions after this page; None when every source is done."""
        return self.runtime.cursors.encode(kind, merge.dump_state(after)) if after else None


def may_use(who: Client, target: Target) -> bool:
    """Whether a client may use a product: its provider, or the federated product itself."""
    if target.federated is not None:
        return who.may_use_product(target.product_id)
    return who.may_use_provider(target.members[0].provider.id)


def visible_target(who: Client, target: Target) -> Target | None:
    """The target as a client may see it: a federated product keeps only the members on the
    client's providers (None when it has none left); one provider's product is unchanged."""
    if target.federated is None:
        return target
    members = [m for m in target.members if who.may_use_provider(m.provider.id)]
    return replace(target, members=members) if members else None
