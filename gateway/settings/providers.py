"""A provider's settings: one entry under `providers:` or one included file."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, ValidationInfo, field_validator

from adapters.registry import ADAPTERS
from gateway.settings.fields import HttpHeaders, NonNegativeInt, PositiveFloat, PositiveInt, RootUrl
from gateway.settings.problems import item_problems, validation_errors

# fullmatch, not `^...$`: `$` would accept a trailing newline.
PROVIDER_ID = re.compile(r"[a-z][a-z0-9-]{0,31}")


class _Unjudged(BaseModel):
    """The options of a provider whose adapter is unknown (the provider fails validation anyway)."""


class OAuthSettings(BaseModel):
    """OAuth2 client credentials for a provider; the token is cached until shortly before expiry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_url: HttpUrl
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1, repr=False)
    scope: str | None = None
    audience: str | None = None
    # How the token request is sent: RFC 6749's form with HTTP Basic, or the JSON body with the
    # credentials in it that Auth0 tenants such as Umbra's document.
    token_request: Literal["form", "json"] = "form"


class ProviderSettings(BaseModel):
    """One upstream provider the gateway federates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    url: RootUrl
    # A name in adapters/registry.py; the adapter's own keys go under `options`.
    adapter: str = "stapi"
    options: BaseModel = Field(default_factory=dict, validate_default=True)
    title: str | None = None
    timeout_s: PositiveFloat = 5.0
    # How often the status tracker asks for each open order's statuses; None takes the adapter's
    # default (60 s for STAPI providers, chosen from the vendor's rate limits for the others).
    status_poll_s: PositiveFloat | None = None
    # Usually carries credentials, so it stays out of repr.
    headers: HttpHeaders = Field(default_factory=dict, repr=False)
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
    link_bases: list[RootUrl] = Field(default_factory=list)
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

    @field_validator("adapter")
    @classmethod
    def _check_adapter(cls, value: str) -> str:
        if value not in ADAPTERS:
            raise ValueError(f"unknown adapter {value!r} (adapters: {', '.join(ADAPTERS)})")
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _check_options(cls, value: Any, info: ValidationInfo) -> BaseModel:
        kind = ADAPTERS.get(info.data.get("adapter", ""))
        if kind is None:
            return _Unjudged()  # the adapter is what is wrong; its options cannot be judged
        options: BaseModel
        if isinstance(value, kind.options):
            options = value
            return options
        try:
            options = kind.options.model_validate({} if value is None else value)
        except ValidationError as exc:
            # Located at each key under `options:`, with the adapter's own keys as the allowed ones.
            raise item_problems(validation_errors(exc, kind.options.model_fields)) from None
        return options

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
