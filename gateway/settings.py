"""The gateway's configuration: typed models, and loading them from YAML with every problem reported.

File reading, `${VAR}` interpolation and include globbing live in `gateway.config_loader`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
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

from gateway.config_loader import ConfigProblem, KeyPart, ProblemCollector, key_path, validation_errors

__all__ = [
    "STORE_ENV",
    "ConfigError",
    "ConfigProblem",
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
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOP_KEYS = ("gateway", "include", "providers")

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]


def _root_url(url: HttpUrl) -> HttpUrl:
    # Query and fragment would be lost or duplicated once paths are appended to the root.
    if url.query or url.fragment:
        raise ValueError("must not have a query string or fragment")
    return url


RootUrl = Annotated[HttpUrl, AfterValidator(_root_url)]


class GatewaySettings(BaseModel):
    """The gateway's own settings: the `gateway:` section of the main file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = "STAPI Gateway"
    description: str = ""
    public_url: RootUrl | None = None
    store: str = "memory://"
    deadline_s: PositiveFloat = 10.0
    # repr=False keeps the HMAC secret out of logs and tracebacks that print the settings.
    secret: str | None = Field(default=None, min_length=1, repr=False)
    max_body_bytes: PositiveInt = 1_048_576

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


class ProviderSettings(BaseModel):
    """One upstream provider the gateway federates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    url: RootUrl
    adapter: Literal["stapi"] = "stapi"
    title: str | None = None
    timeout_s: PositiveFloat = 5.0
    # Usually carries credentials, so it stays out of repr.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    max_connections: PositiveInt = 100

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not PROVIDER_ID.fullmatch(value):
            raise ValueError(
                "provider id must match ^[a-z][a-z0-9-]{0,31}$: a lowercase letter, then at most 31 "
                "lowercase letters, digits or '-'"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name, header in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            if name.lower() in seen:
                raise ValueError(f"header {name!r} is given twice (names are case-insensitive)")
            seen.add(name.lower())
            # Values often come from ${VAR}; a stray newline there would smuggle in extra headers.
            if any(c in header for c in "\r\n\0"):
                raise ValueError(f"value of header {name!r} contains a line break or NUL")
        return value

    @property
    def base_url(self) -> str:
        """The provider's STAPI root without a trailing slash, ready for `base_url + "/products"`."""
        return str(self.url).rstrip("/")

    @property
    def display_title(self) -> str:
        """The configured title, or the id when there is none."""
        return self.title or self.id


class Settings(BaseModel):
    """Everything the gateway needs to start: its own settings and its providers, in file order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    source: str | None = None

    @model_validator(mode="after")
    def _keys_are_ids(self) -> Self:
        for key, provider in self.providers.items():
            if key != provider.id:
                raise ValueError(f"providers key {key!r} differs from its provider's id {provider.id!r}")
        return self

    @classmethod
    def build(
        cls,
        providers: Iterable[ProviderSettings | Mapping[str, Any]] = (),
        *,
        source: str | None = None,
        **gateway: Any,
    ) -> Settings:
        """Build settings in code: `Settings.build([ProviderSettings(...)], deadline_s=2)`."""
        by_id: dict[str, ProviderSettings] = {}
        for item in providers:
            provider = item if isinstance(item, ProviderSettings) else ProviderSettings.model_validate(item)
            if provider.id in by_id:
                raise ValueError(f"duplicate provider id {provider.id!r}")
            by_id[provider.id] = provider
        return cls(gateway=GatewaySettings.model_validate(gateway), providers=by_id, source=source)

    def summary(self) -> str:
        """One line for `check-config`; names no URLs, since a store URL may hold a password."""
        count = len(self.providers)
        noun = "provider" if count == 1 else "providers"
        return f"{self.source or 'settings'}: OK, {count} {noun} ({', '.join(self.providers)})"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason found, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


class _Assembler(ProblemCollector):
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
        self.main_providers(doc.get("providers"))
        self.includes(doc.get("include"))
        if self.entries == 0:
            self.report(self.path, ("providers",), "no providers configured (under `providers` or `include`)")
        if self.problems or gateway is None:
            return None
        return Settings(gateway=gateway, providers=self.providers, source=self.path)

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
            for loc, message in validation_errors(exc, GatewaySettings.model_fields):
                if override and loc[:1] == ("store",):
                    self.problems.append(ConfigProblem("environment", STORE_ENV, message))
                else:
                    self.report(self.path, ("gateway", *loc), message)
            return None

    def main_providers(self, raw: Any) -> None:
        if raw is None:
            return
        if not isinstance(raw, dict):
            self.report(self.path, ("providers",), "must be a mapping of provider id to provider settings")
            return
        for key, fields in raw.items():
            where: tuple[KeyPart, ...] = ("providers", str(key))
            self.entries += 1
            fields = {} if fields is None else fields
            if not isinstance(fields, dict):
                self.report(self.path, where, "must be a mapping of provider settings")
                continue
            if "id" in fields and fields["id"] != key:
                self.report(self.path, (*where, "id"), f"disagrees with the provider's key {key!r}")
            self.add_provider(self.path, where, {**fields, "id": key}, id_from_key="id" not in fields)

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
                self.origins[raw_id] = f"{file} ({key_path(where)})" if where else file
        try:
            provider = ProviderSettings.model_validate(data)
        except ValidationError as exc:
            for loc, message in validation_errors(exc, ProviderSettings.model_fields):
                # When the id is the mapping key, the key itself is what the operator must fix.
                self.report(file, (*where, *([] if id_from_key and loc == ("id",) else loc)), message)
            return
        if unique:
            self.providers[provider.id] = provider


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
