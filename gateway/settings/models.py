"""The gateway's configuration: typed models, and loading them from YAML with every problem reported.

File reading, `${VAR}` interpolation and include globbing live in `gateway.settings.loader`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.domain.inputs import InputLimits
from gateway.http.clients import ALL, ClientSettings
from gateway.settings import loader
from gateway.settings.client_limits import ClientLimits
from gateway.settings.loader import (
    ConfigError,
    ConfigProblem,
    KeyPart,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

__all__ = [
    "STORE_ENV",
    "ConfigError",
    "ConfigProblem",
    "FederatedProduct",
    "GatewaySettings",
    "ProviderSettings",
    "Settings",
    "check_config",
    "load_settings",
]

STORE_ENV = "STAPI_GATEWAY_STORE"
STORE_SCHEMES = ("memory://", "redis://", "rediss://", "unix://")
# fullmatch, not `^...$`: `$` would accept a trailing newline.
PROVIDER_ID = re.compile(r"[a-z][a-z0-9-]{0,31}")
# Ids the gateway mints carry no provider prefix, so they never contain ':'.
FEDERATED_ID = re.compile(r"[a-z][a-z0-9-]{0,63}")
_TOP_KEYS = ("gateway", "include", "providers", "products", "clients")


def _member_problem(value: str) -> str | None:
    provider, colon, product = value.partition(":")
    if not colon:
        return "must be 'provider:product', e.g. 'acme:optical-50cm'"
    if not provider or not product:
        return f"the {'provider' if not provider else 'product'} part (before/after the first ':') is empty"
    if provider != provider.strip() or product != product.strip():
        return "must not have spaces around the provider or product part"
    return None


def _member(value: str) -> str:
    if problem := _member_problem(value):
        raise ValueError(problem)
    return value


Member = Annotated[str, AfterValidator(_member)]


class GatewaySettings(ClientLimits):
    """The gateway's own settings: the `gateway:` section of the main file (see also `ClientLimits`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = "STAPI Gateway"
    description: str = ""
    public_url: loader.RootUrl | None = None
    store: str = "memory://"
    # Namespace of every key in the store, so several gateways (or tests) can share one Redis.
    store_prefix: str = Field(default="stapi-gw:", min_length=1, max_length=64)
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

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        if not value.startswith(STORE_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(STORE_SCHEMES)}")
        return value

    @property
    def input_limits(self) -> InputLimits:
        """The request-body bounds as one value for the validators."""
        return InputLimits(
            self.max_json_depth,
            self.max_geometry_vertices,
            self.max_geometry_area_deg2,
            self.max_interval_days,
            max_filter_depth=self.max_filter_depth,
            max_filter_nodes=self.max_filter_nodes,
            max_json_values=self.max_json_values,
        )

    @property
    def public_base_url(self) -> str | None:
        """`public_url` without a trailing slash, ready for `base + "/path"`; None = from the request."""
        return None if self.public_url is None else str(self.public_url).rstrip("/")


class OAuthSettings(BaseModel):
    """OAuth2 client credentials for a provider; the token is cached until shortly before expiry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_url: HttpUrl
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1, repr=False)
    scope: str | None = None
    audience: str | None = None


class ProviderSettings(BaseModel):
    """One upstream provider the gateway federates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    url: loader.RootUrl
    adapter: Literal["stapi"] = "stapi"
    title: str | None = None
    timeout_s: PositiveFloat = 5.0
    # Usually carries credentials, so it stays out of repr.
    headers: loader.HttpHeaders = Field(default_factory=dict, repr=False)
    oauth: OAuthSettings | None = None
    max_connections: PositiveInt = 100
    # Resilience: reads are retried on connect errors, 502/503/504 and 429 (never order creation).
    retries: NonNegativeInt = 2
    retry_backoff_s: PositiveFloat = 0.1
    # Consecutive failures that open the circuit (0 = never); it half-opens after circuit_open_s.
    circuit_failures: NonNegativeInt = 5
    circuit_open_s: PositiveFloat = 30.0
    # What the vendor allows: calls in flight, calls per second, order creations per second.
    max_concurrent: PositiveInt = 50
    rate_per_s: PositiveFloat | None = None
    order_rate_per_s: PositiveFloat | None = None
    # Further roots the provider's links name as its own (its public URL behind a proxy, say):
    # hrefs under them are rewritten to the gateway like those under `url`, never passed on.
    link_bases: list[loader.RootUrl] = Field(default_factory=list)
    # Relay this provider's links to loopback, link-local and private addresses (dropped otherwise).
    allow_private_links: bool = False

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not PROVIDER_ID.fullmatch(value):
            raise ValueError(
                "provider id must match ^[a-z][a-z0-9-]{0,31}$: a lowercase letter, then at most 31 "
                "lowercase letters, digits or '-'"
            )
        return value

    @property
    def base_url(self) -> str:
        """The provider's STAPI root without a trailing slash, ready for `base_url + "/products"`."""
        return str(self.url).rstrip("/")

    @property
    def link_base_urls(self) -> tuple[str, ...]:
        """`link_bases` without trailing slashes."""
        return tuple(str(url).rstrip("/") for url in self.link_bases)

    @property
    def display_title(self) -> str:
        """The configured title, or the id when there is none."""
        return self.title or self.id


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
        if repeats := loader.repeats(value):
            raise loader.item_problems(
                [(i, f"duplicate member {value[i]!r}, already members[{j}]") for i, j in repeats]
            )
        return value

    @property
    def display_title(self) -> str:
        """The configured title, or the id when there is none."""
        return self.title or self.id

    def member_ids(self) -> list[tuple[str, str]]:
        """Each member as `(provider_id, product_id)`, split at the first ':'."""
        return [(provider, product) for provider, _, product in (m.partition(":") for m in self.members)]


def _unknown_provider(provider: str, known: Iterable[str]) -> str:
    return f"unknown provider {provider!r} (configured: {', '.join(known) or 'none'})"


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
    def _keys_are_ids(self) -> Self:
        for key, provider in self.providers.items():
            if key != provider.id:
                raise ValueError(f"providers key {key!r} differs from its provider's id {provider.id!r}")
        for key, product in self.products.items():
            if key != product.id:
                raise ValueError(f"products key {key!r} differs from its federated product's id {product.id!r}")
            for pid, _ in product.member_ids():
                if pid not in self.providers:
                    raise ValueError(f"federated product {key!r}: {_unknown_provider(pid, self.providers)}")
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
            providers=loader.by_id(ProviderSettings, providers, "provider"),
            products=loader.by_id(FederatedProduct, products, "federated product"),
            clients=loader.by_id(ClientSettings, clients, "client"),
            source=source,
        )

    def summary(self) -> str:
        """One line for `check-config`; names no URLs, since a store URL may hold a password."""
        line = f"{self.source or 'settings'}: OK, {loader.counted(self.providers, 'provider')}"
        return line + (f", {loader.counted(self.products, 'federated product')}" if self.products else "")


class _Assembler(loader.ProblemCollector):
    """Reads the main file and its includes into one `Settings`, collecting every problem."""

    def __init__(self, path: str, environ: Mapping[str, str]) -> None:
        super().__init__(environ)
        self.path = path
        self.providers: dict[str, ProviderSettings] = {}
        self.origins: dict[str, str] = {}
        self.entries = 0

    def run(self) -> Settings | None:
        doc = self.read_mapping(self.path)
        if doc is None:
            return None
        for key in doc:
            if key not in _TOP_KEYS:
                self.report(self.path, (str(key),), f"unknown key (expected one of: {', '.join(_TOP_KEYS)})")
        gateway = self.gateway(doc.get("gateway"))
        for where, fields, id_from_key in self.keyed_entries(self.path, "providers", doc.get("providers"), "provider"):
            self.entries += 1
            if fields is not None:
                self.add_provider(self.path, where, fields, id_from_key=id_from_key)
        self.includes(doc.get("include"))
        if self.entries == 0:
            self.report(self.path, ("providers",), "no providers configured (under `providers` or `include`)")
        # After the includes: members may name providers defined in any file.
        products = self.products(doc.get("products"))
        clients = self.clients(doc.get("clients"), products)
        if self.problems or gateway is None:
            return None
        return Settings(gateway=gateway, providers=self.providers, products=products, clients=clients, source=self.path)

    def gateway(self, raw: Any) -> GatewaySettings | None:
        data = {} if raw is None else raw
        if not isinstance(data, dict):
            self.report(self.path, ("gateway",), "must be a mapping")
            return None
        override = self.environ.get(STORE_ENV)
        if override:
            data = {**data, "store": override}
        try:
            return GatewaySettings.model_validate(data)
        except ValidationError as exc:
            for loc, message in loader.validation_errors(exc, GatewaySettings.model_fields):
                if override and loc[:1] == ("store",):
                    self.problems.append(ConfigProblem("environment", STORE_ENV, message))
                else:
                    self.report(self.path, ("gateway", *loc), message)
            return None

    def includes(self, raw: Any) -> None:
        if raw is None:
            return
        if not isinstance(raw, list):
            self.report(self.path, ("include",), "must be a list of glob patterns")
            return
        for file in self.include(raw, self.path):
            if (data := self.read_mapping(file)) is not None:
                self.entries += 1
                self.add_provider(file, (), data, id_from_key=False)

    def add_provider(self, file: str, where: tuple[KeyPart, ...], data: dict[Any, Any], *, id_from_key: bool) -> None:
        raw_id = data.get("id")
        unique = True
        if isinstance(raw_id, str):
            if raw_id in self.origins:
                unique = False
                message = f"duplicate provider id {raw_id!r}, already defined in {self.origins[raw_id]}"
                self.report(file, where if id_from_key else (*where, "id"), message)
            else:
                self.origins[raw_id] = f"{file} ({loader.key_path(where)})" if where else file
        provider = self.validate(ProviderSettings, file, where, data, id_from_key=id_from_key)
        if provider is not None and unique:
            self.providers[provider.id] = provider

    def products(self, raw: Any) -> dict[str, FederatedProduct]:
        # Providers that failed validation for another reason still count: one mistake, one problem.
        known = [pid for pid in self.origins if PROVIDER_ID.fullmatch(pid)]
        products: dict[str, FederatedProduct] = {}
        for where, fields, id_from_key in self.keyed_entries(self.path, "products", raw, "federated product"):
            if fields is None:
                continue
            members = fields.get("members")
            for index, member in enumerate(members if isinstance(members, list) else []):
                # Malformed members are the model's to report; only well-formed ones can name a provider.
                pid = member.partition(":")[0] if isinstance(member, str) and not _member_problem(member) else None
                if pid is not None and pid not in known:
                    self.report(self.path, (*where, "members", index), _unknown_provider(pid, known))
            federated = self.validate(FederatedProduct, self.path, where, fields, id_from_key=id_from_key)
            if federated is not None:
                products[federated.id] = federated
        return products

    def clients(self, raw: Any, products: dict[str, FederatedProduct]) -> dict[str, ClientSettings]:
        known = [pid for pid in self.origins if PROVIDER_ID.fullmatch(pid)]
        clients: dict[str, ClientSettings] = {}
        digests: dict[str, str] = {}
        for where, fields, id_from_key in self.keyed_entries(self.path, "clients", raw, "client"):
            if fields is None:
                continue
            client = self.validate(ClientSettings, self.path, where, fields, id_from_key=id_from_key)
            if client is None:
                continue
            for index, pid in enumerate(client.providers):
                if pid != ALL and pid not in known:
                    self.report(self.path, (*where, "providers", index), _unknown_provider(pid, known))
            for index, fid in enumerate(client.products):
                if fid != ALL and fid not in products:
                    choices = ", ".join(products) or "none"
                    self.report(
                        self.path, (*where, "products", index), f"unknown federated product {fid!r} ({choices})"
                    )
            if client.digest in digests:
                self.report(self.path, (*where, "key"), f"the same key as client {digests[client.digest]!r}")
            digests[client.digest] = client.id
            clients[client.id] = client
        return clients


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the main file and its includes; raise `ConfigError` listing every problem found."""
    assembler = _Assembler(str(path), os.environ if environ is None else environ)
    settings = assembler.run()
    if settings is None:
        raise ConfigError(assembler.problems)
    return settings


def check_config(path: str | Path, environ: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    """Every problem in a configuration, empty when it is valid; contacts nothing."""
    try:
        load_settings(path, environ)
    except ConfigError as exc:
        return exc.problems
    return []
