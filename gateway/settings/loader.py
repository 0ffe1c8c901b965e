"""Loading the configuration: the main file, its includes and the environment, into one `Settings`,
every problem reported with its file and key path (files.py reads, the models judge).

Rules that relate entries to each other (members and clients naming configured providers, one
definition per provider id) are checked here, where each problem can be located; `Settings` is
then built without checking them again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.settings.clients import ALL, ClientSettings
from gateway.settings.files import ProblemCollector
from gateway.settings.models import (
    REFERENCES_CHECKED,
    FederatedProduct,
    GatewaySettings,
    Settings,
    unknown_members,
    unknown_provider,
)
from gateway.settings.problems import ConfigError, ConfigProblem, KeyPart, key_path, validation_errors
from gateway.settings.providers import PROVIDER_ID, ProviderSettings

STORE_ENV = "STAPI_GATEWAY_STORE"
_TOP_KEYS = ("gateway", "include", "providers", "products", "clients")


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
        fields = {"gateway": gateway, "providers": self.providers, "products": products, "clients": clients}
        return Settings.model_validate({**fields, "source": self.path}, context={REFERENCES_CHECKED: True})

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
            for index, problem in unknown_members(members if isinstance(members, list) else [], known):
                self.report(self.path, (*where, "members", index), problem)
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
                    self.report(self.path, (*where, "providers", index), unknown_provider(pid, known))
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
