"""The gateway's configuration as typed models: its own settings, federated products, and the
whole `Settings`; a provider's settings are in gateway/settings/providers.py.

Loading them from YAML, with every problem located at its file and key path, is
gateway/settings/loader.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gateway.settings.client_limits import ClientLimits
from gateway.settings.clients import ClientSettings
from gateway.settings.fields import NonNegativeFloat, PositiveFloat, PositiveInt, RootUrl, by_id, counted, repeats
from gateway.settings.problems import item_problems
from gateway.settings.providers import OAuthSettings, ProviderSettings

# The provider models live in providers.py; they are named here too, so that every model of the
# configuration can be imported from this one module.
__all__ = ["FederatedProduct", "GatewaySettings", "OAuthSettings", "ProviderSettings", "Settings"]

STORE_SCHEMES = (
    "memory://",
    "redis://",
    "rediss://",
    "unix://",
    "redis+sentinel://",
    "rediss+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
)
# Ids the gateway mints carry no provider prefix, so they never contain ':'.
FEDERATED_ID = re.compile(r"[a-z][a-z0-9-]{0,63}")
# Validation context under which `Settings` leaves its cross-references to the loader, which has
# checked them already and located each problem at its file and key.
REFERENCES_CHECKED = "references_checked"


def member_problem(value: str) -> str | None:
    """What is wrong with a `provider:product` member, or None."""
    provider, colon, product = value.partition(":")
    if not colon:
        return "must be 'provider:product', e.g. 'acme:optical-50cm'"
    if not provider or not product:
        return f"the {'provider' if not provider else 'product'} part (before/after the first ':') is empty"
    if provider != provider.strip() or product != product.strip():
        return "must not have spaces around the provider or product part"
    return None


def _member(value: str) -> str:
    if problem := member_problem(value):
        raise ValueError(problem)
    return value


Member = Annotated[str, AfterValidator(_member)]


class WebhookSettings(BaseModel):
    """How the gateway delivers notifications: the `gateway.webhooks:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Exponential backoff with jitter between attempts, from retry_initial_s up to retry_max_s,
    # for retry_for_s after the event; then the delivery is marked failed.
    retry_initial_s: PositiveFloat = 5.0
    retry_max_s: PositiveFloat = 3600.0
    retry_for_s: PositiveFloat = 86_400.0
    # Deliver to loopback, link-local and private addresses (tests and the demo need it).
    allow_private: bool = False
    # One attempt's whole budget (connect, send, read): a slow receiver can't hold a worker longer.
    timeout_s: PositiveFloat = 10.0
    # Deliveries in flight per replica.
    concurrency: PositiveInt = 16
    # Subscriptions one client may hold.
    max_subscriptions: PositiveInt = 20


class GatewaySettings(ClientLimits):
    """The gateway's own settings: the `gateway:` section of the main file (see also `ClientLimits`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = "STAPI Gateway"
    description: str = ""
    public_url: RootUrl | None = None
    store: str = "memory://"
    # Namespace of every key in the store, so several gateways (or tests) can share one Redis.
    # No braces: a `{...}` in the prefix would be every key's Redis Cluster hash tag (all on one node).
    store_prefix: str = Field(default="stapi-gw:", min_length=1, max_length=64, pattern=r"^[^{}]+$")
    deadline_s: PositiveFloat = 10.0
    # repr=False keeps the HMAC secret out of logs and tracebacks that print the settings.
    secret: str | None = Field(default=None, min_length=1, repr=False)
    max_body_bytes: PositiveInt = 1_048_576
    # Bounds on what one request may ask (422 beyond them).
    max_json_depth: PositiveInt = 32
    max_geometry_vertices: PositiveInt = 10_000
    max_geometry_area_deg2: PositiveFloat = 10_000.0
    max_interval_days: PositiveFloat = 366.0
    # Async search records and stored opportunity collections expire after this.
    search_ttl_s: PositiveFloat = 86_400.0
    # Minimum interval between two upstream status polls of one search record.
    search_refresh_s: PositiveFloat = 2.0
    # Background searches (emulated sync searches and upstream polls) at once in one process.
    search_concurrency: PositiveInt = 8
    # Opportunities an async search record keeps per member product (the rest are not fetched).
    max_search_results: PositiveInt = 1000
    # How long a provider product's conformance/capabilities are cached; 0 = not cached.
    catalogue_ttl_s: NonNegativeFloat = 60.0
    # An Idempotency-Key on order creation is remembered this long; a retry within it is safe.
    idempotency_ttl_s: PositiveFloat = 86_400.0
    # A placed order's journal entry and owner live this long (as long as providers list orders).
    order_retention_s: PositiveFloat = 90 * 86_400.0
    # Orders of unknown outcome are looked up at their provider until this old, then left to the operator.
    order_unknown_horizon_s: PositiveFloat = 86_400.0
    # Reconciliation budget per provider, all replicas together: one scan per interval, pages per scan.
    reconcile_scan_interval_s: PositiveFloat = 5.0
    reconcile_max_pages: PositiveInt = 10
    # A store that can lose acknowledged keys (no AOF fsync always, eviction): warn, or refuse to start.
    store_durability: Literal["warn", "require"] = "warn"
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    # OpenTelemetry spans and W3C traceparent towards providers (needs stapi-gateway[otel]); the
    # exporter is configured by the standard OTEL_* environment (gateway/obs/tracing.py).
    tracing: bool = False

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        if not value.startswith(STORE_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(STORE_SCHEMES)}")
        return value

    @property
    def public_base_url(self) -> str | None:
        """`public_url` without a trailing slash, ready for `base + "/path"`; None = from the request."""
        return None if self.public_url is None else str(self.public_url).rstrip("/")


class FederatedProduct(BaseModel):
    """A product of the gateway's own that federates products of several providers (`products:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str | None = None
    description: str = ""
    keywords: list[str] = Field(default_factory=list)
    # Namespaced product ids, `provider:product`, of the providers' products it federates.
    members: list[Member]

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not FEDERATED_ID.fullmatch(value):
            raise ValueError(
                "federated product id must match ^[a-z][a-z0-9-]{0,63}$: a lowercase letter, then at most 63 "
                "lowercase letters, digits or '-' (no ':', which only provider products carry)"
            )
        return value

    @field_validator("members")
    @classmethod
    def _check_members(cls, value: list[str]) -> list[str]:
        if len(value) < 2:
            raise ValueError(f"needs at least 2 members, got {len(value)}: one member is just that product")
        if repeated := repeats(value):
            raise item_problems([(i, f"duplicate member {value[i]!r}, already members[{j}]") for i, j in repeated])
        return value

    @property
    def display_title(self) -> str:
        """The configured title, or the id when there is none."""
        return self.title or self.id

    def member_ids(self) -> list[tuple[str, str]]:
        """Each member as `(provider_id, product_id)`, split at the first ':'."""
        return [(provider, product) for provider, _, product in (m.partition(":") for m in self.members)]


def unknown_provider(provider: str, known: Iterable[str]) -> str:
    """The problem of a reference to a provider that is not configured."""
    return f"unknown provider {provider!r} (configured: {', '.join(known) or 'none'})"


def unknown_members(members: Iterable[Any], known: Collection[str]) -> list[tuple[int, str]]:
    """`(index, problem)` for each well-formed member whose provider is not among `known` (a
    malformed member is the member check's to report: it names no provider)."""
    found = []
    for index, member in enumerate(members):
        pid = member.partition(":")[0] if isinstance(member, str) and not member_problem(member) else None
        if pid is not None and pid not in known:
            found.append((index, unknown_provider(pid, known)))
    return found


class Settings(BaseModel):
    """Everything the gateway needs to start: its settings, providers and federated products, in file order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    products: dict[str, FederatedProduct] = Field(default_factory=dict)
    # Inbound API clients; authentication is on when there is at least one.
    clients: dict[str, ClientSettings] = Field(default_factory=dict)
    source: str | None = None

    @model_validator(mode="after")
    def _check_references(self, info: ValidationInfo) -> Self:
        # Each rule is checked once: by the loader, with each problem at its key, for files.
        if info.context and info.context.get(REFERENCES_CHECKED):
            return self
        for key, provider in self.providers.items():
            if key != provider.id:
                raise ValueError(f"providers key {key!r} differs from its provider's id {provider.id!r}")
        for key, product in self.products.items():
            if key != product.id:
                raise ValueError(f"products key {key!r} differs from its federated product's id {product.id!r}")
            if found := unknown_members(product.members, list(self.providers)):
                raise ValueError(f"federated product {key!r}: {found[0][1]}")
        return self

    @classmethod
    def build(
        cls,
        providers: Iterable[ProviderSettings | Mapping[str, Any]] = (),
        *,
        products: Iterable[FederatedProduct | Mapping[str, Any]] = (),
        clients: Iterable[ClientSettings | Mapping[str, Any]] = (),
        source: str | None = None,
        **gateway: Any,
    ) -> Settings:
        """Build settings in code: `Settings.build([ProviderSettings(...)], products=[...], deadline_s=2)`."""
        return cls(
            gateway=GatewaySettings.model_validate(gateway),
            providers=by_id(ProviderSettings, providers, "provider"),
            products=by_id(FederatedProduct, products, "federated product"),
            clients=by_id(ClientSettings, clients, "client"),
            source=source,
        )

    def summary(self) -> str:
        """One line for `check-config`; names no URLs, since a store URL may hold a password."""
        line = f"{self.source or 'settings'}: OK, {counted(self.providers, 'provider')}"
        return line + (f", {counted(self.products, 'federated product')}" if self.products else "")
