"""What a provider sends is scrubbed of the credentials the gateway holds for it before anyone sees it.

A provider that echoes request headers (in a body, an error `detail`, a validation message, a
search record's reason) would otherwise hand its `Authorization` header, or the OAuth token the
gateway minted, to every client. Each adapter owns one `Scrubber` that knows its provider's
secrets: the configured header values (fixed) and the OAuth client's (current tokens included,
asked for on every use). Every string relayed from the provider passes through it.

Provider text shown to clients (error details, reasons) is also made printable and bounded.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import httpx
import orjson

REDACTED = "[redacted]"
# Shorter values are not treated as secrets: replacing "eu" or "v2" everywhere would mangle the
# provider's documents, and a credential that short is guessable anyway.
MIN_SECRET_CHARS = 8
DETAIL_LIMIT = 200
# httpx's own default request headers: not credentials.
_DEFAULT_HEADERS = frozenset({"accept", "accept-encoding", "connection", "user-agent"})

T = TypeVar("T")


@runtime_checkable
class SecretSource(Protocol):
    """Something holding credentials that change over time (an OAuth client and its tokens)."""

    def secrets(self) -> Iterable[str]:
        """The credentials in use now (and recently)."""
        ...


def printable(text: str, limit: int = DETAIL_LIMIT) -> str:
    """Text safe to show: control and format characters (newlines, bidi overrides) become
    spaces, and it is cut to `limit` characters. Replaced, not removed, so no new text forms."""
    head = text[: limit + 1]
    clean = "".join(c if c.isprintable() else " " for c in head)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def _variants(value: str) -> list[str]:
    """A credential as a provider might echo it: whole, each word (`Bearer <token>`), and the
    user:password inside an HTTP Basic value."""
    found = [value, *value.split()]
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        if decoded:
            found += [decoded, *decoded.split(":")]
    return found


def _usable(values: Iterable[str]) -> tuple[str, ...]:
    """Distinct secrets long enough to scrub, longest first (so `Bearer x` goes before `x`)."""
    unique = {v for value in values for v in _variants(value) if len(v) >= MIN_SECRET_CHARS}
    return tuple(sorted(unique, key=lambda s: (-len(s), s)))


def _needle(secret: str) -> bytes:
    # How orjson writes the secret inside a JSON string: the form to look for in canonical JSON.
    return orjson.dumps(secret)[1:-1]


# How deep orjson writes JSON (it reads 1024 levels, writes 254): the gateway's answers are orjson.
MAX_DEPTH = 254
# Bodies up to this size are checked for it when parsed (a hostile deep body is small).
DEPTH_CHECKED_BYTES = 256 * 1024


class Scrubber:
    """Replaces one provider's credentials by `[redacted]` in everything relayed from it."""

    def __init__(self, secrets: Iterable[str] = (), sources: Iterable[SecretSource] = ()) -> None:
        self._fixed = _usable(secrets)
        self._sources = tuple(sources)
        self._memo: tuple[tuple[str, ...], tuple[str, ...], tuple[bytes, ...]] = ((), (), ())
        self._needles = tuple(_needle(s) for s in self._fixed)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({len(self._fixed)} fixed secrets, {len(self._sources)} sources)"

    @classmethod
    def for_client(cls, client: httpx.AsyncClient, extra: Iterable[str] = ()) -> Scrubber:
        """The scrubber for a provider's client: its header values, URL password and auth's secrets."""
        headers: Mapping[str, str] = client.headers
        secrets = [value for name, value in headers.items() if name.lower() not in _DEFAULT_HEADERS]
        if client.base_url.password:
            secrets.append(client.base_url.password)
        auth = client.auth
        sources: list[SecretSource] = [auth] if isinstance(auth, SecretSource) else []
        return cls([*secrets, *extra], sources)

    def _current(self) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
        if not self._sources:
            return self._fixed, self._needles
        dynamic = tuple(s for source in self._sources for s in source.secrets())
        if dynamic != self._memo[0]:
            secrets = _usable([*self._fixed, *dynamic])
            self._memo = (dynamic, secrets, tuple(_needle(s) for s in secrets))
        return self._memo[1], self._memo[2]

    def text(self, value: str) -> str:
        """The string without any of the provider's credentials."""
        for secret in self._current()[0]:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def shown(self, value: str, limit: int = DETAIL_LIMIT) -> str:
        """Provider text as a client may see it: scrubbed (whole, before cutting), printable, bounded."""
        return printable(self.text(value), limit)

    def parse(self, content: bytes) -> Any:
        """A provider's JSON body, parsed and scrubbed; ValueError saying why when it is not JSON the
        gateway can relay: invalid, or nested deeper than orjson writes (MAX_DEPTH), which would
        fail only later, when the answer is rendered (a 500, and in a merged list for everyone)."""
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise ValueError("invalid JSON") from None
        # Only a body with that many brackets can nest that deep; the check then costs one dump in
        # C, which for large bodies (12 ms for 3.7 MB of opportunities) is left to the renderer
        # (gateway/http/responses.py writes such an answer with the stdlib instead).
        if len(content) <= DEPTH_CHECKED_BYTES and content.count(b"[") + content.count(b"{") > MAX_DEPTH:
            try:
                orjson.dumps(data)
            except orjson.JSONEncodeError:
                raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        return self.document(content, data)

    def document(self, content: bytes, data: T) -> T:
        """Parsed JSON (`data`, parsed from `content`) with every string, keys too, scrubbed.

        Almost every body holds no secret, and finding that out must cost next to nothing on
        the proxying path: a byte search of the raw body. It is exact when the body has no
        backslash (no JSON escapes, so strings are their bytes); otherwise the search runs on
        orjson's canonical re-encoding, in which a string can be written only one way.
        """
        secrets, needles = self._current()
        if not secrets:
            return data
        haystack: bytes | None
        try:
            haystack = content if b"\\" not in content else orjson.dumps(data)
        except TypeError:  # nested deeper than orjson writes (254): look at every string instead
            haystack = None
        if haystack is not None and not any(needle in haystack for needle in needles):
            return data
        if isinstance(data, str):
            return self.text(data)  # type: ignore[return-value]
        self._scrub_in_place(data)
        return data

    def _scrub_in_place(self, data: Any) -> None:
        # Iterative: a provider may nest 1024 levels (orjson's limit), deeper than Python recursion.
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                items = list(node.items())
                node.clear()
                for key, value in items:
                    node[self.text(key) if isinstance(key, str) else key] = self._leaf(value, stack)
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    node[index] = self._leaf(value, stack)

    def _leaf(self, value: Any, stack: list[Any]) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict | list):
            stack.append(value)
        return value
