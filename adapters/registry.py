"""The adapters a provider's `adapter:` key may name: one table, one line per adapter.

Each adapter's folder under adapters/ holds its factory and the pydantic model of its
`options:` keys; adding an adapter is that folder and one line here. The settings validate a
provider's `adapter` and `options` against this table, so `check-config` knows every adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from adapters.base import ProviderAdapter
from adapters.stapi import config as stapi_config

OptionsT = TypeVar("OptionsT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class AdapterKind(Generic[OptionsT]):
    """An adapter as the gateway builds it: from the provider id, its pooled client, the client's
    transport (for adapters that send directly) and the validated `options:`."""

    build: Callable[[str, httpx.AsyncClient, httpx.AsyncBaseTransport, OptionsT], ProviderAdapter]
    options: type[OptionsT]


ADAPTERS: dict[str, AdapterKind[Any]] = {
    "stapi": AdapterKind(stapi_config.build, stapi_config.StapiOptions),
}
