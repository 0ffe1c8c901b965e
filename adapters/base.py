"""The contract between the gateway and its adapters: the protocol, its result types, and the
errors an adapter may raise. It imports nothing from `gateway`.

Adapters speak to a provider through an injected `httpx.AsyncClient` and return plain,
validated STAPI JSON (dicts) with the provider's own ids and hrefs. Namespacing and link
rewriting belong to the gateway, which keeps adapters free of anything HTTP-server-side.
What the injected client and an adapter share (operation names, transport failures, the
provider-failure header) is the other half of the contract, in adapters/client.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    # Only an annotation here: adapters/schemas.py raises this module's errors.
    from adapters.schemas import CheckedSchema

JSONObject = dict[str, Any]


# --- the errors an adapter may raise ----------------------------------------------------
#
# One hierarchy for every error raised on purpose, without HTTP: gateway/http/handlers.py is
# the one table from these classes to statuses. The gateway's own errors (gateway/domain/
# errors.py) derive from the same root, so `except DeliberateError` catches both kinds.


class DeliberateError(Exception):
    """Base of every error raised on purpose, by an adapter or by the gateway."""

    code = "gateway_error"

    def __init__(
        self, detail: str, *, extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        # Response headers the error calls for (WWW-Authenticate, Retry-After).
        self.headers = headers or {}


class InvalidRequest(DeliberateError):
    """The request is malformed in a way no schema describes (bad query value, bad header), as
    the gateway or a provider judges it."""

    code = "invalid_request"


class NotFound(DeliberateError):
    """The addressed resource does not exist."""

    code = "not_found"


class RequestValidationFailed(DeliberateError):
    """The body or parameters fail validation; `errors` lists each failing location."""

    code = "validation_failed"

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, extra={"errors": errors})
        self.errors = errors


class UpstreamNotFound(NotFound):
    """The provider says the addressed resource does not exist."""

    code = "not_found"

    def __init__(self, provider_id: str, detail: str) -> None:
        super().__init__(detail, extra={"provider": provider_id})
        self.provider_id = provider_id


class ProviderError(DeliberateError):
    """A provider failed to give a usable answer.

    `maybe_received` says whether the provider may have acted on the request anyway (the
    connection was lost or timed out after sending): what decides if an order's outcome is unknown.
    """

    code = "provider_error"

    def __init__(self, provider_id: str, detail: str, *, maybe_received: bool = False) -> None:
        super().__init__(detail, extra={"provider": provider_id})
        self.provider_id = provider_id
        self.maybe_received = maybe_received


class ProviderTimeout(ProviderError):
    """The provider did not answer within its timeout or the request's deadline."""

    code = "provider_timeout"


class ProviderUnreachable(ProviderError):
    """No connection to the provider could be made, or it was lost."""

    code = "provider_unreachable"


class ProviderUnavailable(ProviderError):
    """The gateway is not calling the provider for now (its circuit breaker is open)."""

    code = "provider_unavailable"


class ProviderBadStatus(ProviderError):
    """The provider answered with an unexpected HTTP status."""

    code = "provider_bad_status"

    def __init__(self, provider_id: str, detail: str, status: int) -> None:
        super().__init__(provider_id, detail)
        self.status = status


class ProviderInvalidPayload(ProviderError):
    """The provider's answer is not valid STAPI (not JSON, or not the expected model)."""

    code = "provider_invalid_payload"


class ProviderFailedBehind(ProviderError):
    """An upstream gateway answered that providers behind it failed: their failure, relayed.

    `code` and `status` are the upstream gateway's (502, 503 or 504); `behind` names the failed
    providers in this gateway's namespace (`g1:bravo`), for `federation:missing`.
    """

    def __init__(
        self, provider_id: str, detail: str, *, code: str, status: int, behind: list[str], maybe_received: bool
    ) -> None:
        super().__init__(provider_id, detail, maybe_received=maybe_received)
        self.code = code
        self.status = status
        self.behind = behind


class OrderNotCancellable(DeliberateError):
    """The provider refused to cancel an order in its present state (`vendor_state`, the vendor's own
    status, shown as `provider:status`); `order` is the order as the vendor showed it then, if read.
    `cancelling`: the refusal is because the order is cancelled, or being cancelled, already (a
    cancel asked again after a lost answer, or two at once), which is no refusal for the client."""

    code = "order_not_cancellable"

    def __init__(
        self, provider_id: str, detail: str, state: str, order: JSONObject | None = None, *, cancelling: bool = False
    ) -> None:
        super().__init__(detail, extra={"provider": provider_id, "provider:status": state})
        self.provider_id = provider_id
        self.vendor_state = state
        self.order = order
        self.cancelling = cancelling


# --- what an adapter returns -------------------------------------------------------------


class SearchMode(StrEnum):
    """Which answer the gateway wants from an opportunity search."""

    SYNC = "wait"
    ASYNC = "respond-async"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a provider's list: the items and the provider's token for the next page.

    `missing`: providers an upstream gateway says its page lacks (its `federation:missing`).
    """

    items: list[JSONObject]
    next_token: str | None = None
    links: list[JSONObject] = field(default_factory=list)
    number_matched: int | None = None
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Created:
    """A provider's answer to a creating POST: the body and where the provider put it."""

    body: JSONObject
    location: str | None = None
    preference_applied: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """An opportunity search answer: a collection (sync) or a search record (async).

    A collection's `next_token` is the provider's token for its next page (None on the last page
    and for a record); `missing`: providers an upstream gateway says the collection lacks.
    """

    body: JSONObject
    is_async: bool
    location: str | None = None
    preference_applied: str | None = None
    next_token: str | None = None
    missing: list[str] = field(default_factory=list)


class ProviderAdapter(Protocol):
    """A provider as the gateway sees it: one coroutine per operation the gateway calls, and no more.

    Each operation's name is what the adapter sends in `OPERATION_EXTENSION`, and is listed in
    `READ_OPERATIONS`, `CREATE_OPERATIONS` or `WRITE_OPERATIONS` (adapters/client.py).
    """

    provider_id: str
    base_url: str
    # True when the vendor keeps a client reference on an order (Umbra's `userOrderId`, Planet's
    # `name`): `create_order` stores the gateway's attempt id there and `find_order` looks it up,
    # so an order whose answer was lost is found exactly. False: the gateway scans `list_orders`.
    finds_orders_by_reference: bool
    # True when the vendor can call an order off (`cancel_order`); False: the gateway answers 405.
    cancels_orders: bool
    # How often the status tracker polls an open order when the provider sets no `status_poll_s`.
    status_poll_s: float
    # The read rate the vendor documents per account (None: it documents none); the tracker takes a
    # share of it when the provider sets no `rate_per_s`.
    read_rate_per_s: float | None

    async def landing_page(self) -> JSONObject:
        """The provider's landing page (the gateway reads the root it names itself by)."""
        ...

    async def list_products(self, *, token: str | None, limit: int) -> Page:
        """One page of the provider's products."""
        ...

    async def get_product(self, product_id: str) -> JSONObject:
        """One product."""
        ...

    async def product_conformance(self, product_id: str) -> list[str]:
        """The product-level conformance classes (the computed list, not the declared one)."""
        ...

    async def queryables(self, product_id: str) -> CheckedSchema:
        """The JSON Schema of the product's queryables, checked (adapters/schemas.py)."""
        ...

    async def order_parameters(self, product_id: str) -> CheckedSchema:
        """The JSON Schema of the product's order parameters, checked (adapters/schemas.py)."""
        ...

    async def search_opportunities(self, product_id: str, payload: JSONObject, mode: SearchMode) -> SearchResult:
        """Run an opportunity search, asking for the given mode."""
        ...

    async def get_opportunity_collection(
        self, product_id: str, collection_id: str, *, token: str | None = None, limit: int | None = None
    ) -> SearchResult:
        """The collection an async search produced, or the page of it at `token`: a collection
        `SearchResult` whose `next_token` is the next page's (None on the last page)."""
        ...

    async def get_search_record(self, record_id: str) -> JSONObject:
        """One opportunity search record."""
        ...

    async def create_order(self, product_id: str, payload: JSONObject, *, reference: str) -> Created:
        """Place an order, tagged with `reference` (the gateway's attempt id) where the vendor keeps
        one. Never retried: the caller decides what an unknown outcome means."""
        ...

    async def find_order(self, reference: str) -> JSONObject | None:
        """The order placed with `reference`, None when the vendor has none (called only when
        `finds_orders_by_reference`)."""
        ...

    async def list_orders(self, *, token: str | None, limit: int) -> Page:
        """One page of the provider's orders."""
        ...

    async def get_order(self, order_id: str) -> JSONObject:
        """One order."""
        ...

    async def order_statuses(self, order_id: str, *, token: str | None, limit: int) -> Page:
        """One page of an order's status history."""
        ...

    async def cancel_order(self, order_id: str) -> JSONObject:
        """Ask the vendor to cancel an order: the order once the vendor accepted. A refusal raises
        OrderNotCancellable with the vendor's state. Never retried (a write)."""
        ...

    async def aclose(self) -> None:
        """Release the adapter's connections."""
        ...
