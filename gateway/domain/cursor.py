"""Opaque, signed pagination cursors.

A cursor packs the gateway's position (for a merged list: every provider's own position) as
JSON, base64url-encoded and signed with HMAC-SHA256 under the gateway's secret. The signature
covers the route kind, so a cursor minted for one list is refused by another. A client can
decode but not forge a cursor; the gateway never calls a URL that came from one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

from gateway.domain.errors import InvalidCursor

MAX_CURSOR_CHARS = 8192
_SIG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Signs and verifies cursors for one gateway secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._previous: bytes | None = None

    def rotate(self, secret: bytes) -> None:
        """Sign with a new secret from now on; cursors signed with the current one stay valid."""
        if secret != self._secret:
            self._previous, self._secret = self._secret, secret

    def _sign(self, kind: str, payload: bytes, secret: bytes | None = None) -> bytes:
        key = self._secret if secret is None else secret
        return hmac.new(key, kind.encode() + b"\0" + payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def _signed(self, kind: str, payload: bytes, signature: bytes) -> bool:
        if hmac.compare_digest(signature, self._sign(kind, payload)):
            return True
        previous = self._previous
        return previous is not None and hmac.compare_digest(signature, self._sign(kind, payload, previous))

    def encode(self, kind: str, state: Any) -> str:
        """A cursor for `state` on the list named `kind`."""
        payload = orjson.dumps(state)
        return f"{_b64(payload)}.{_b64(self._sign(kind, payload))}"

    def decode(self, kind: str, cursor: str) -> Any:
        """The state inside a cursor this gateway minted for `kind`; InvalidCursor otherwise."""
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise InvalidCursor("The pagination cursor is malformed.")
        body, sig = cursor.split(".")
        try:
            payload, signature = _unb64(body), _unb64(sig)
        except (binascii.Error, ValueError):
            raise InvalidCursor("The pagination cursor is malformed.") from None
        if not self._signed(kind, payload, signature):
            raise InvalidCursor("The pagination cursor was not issued by this gateway for this list.")
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise InvalidCursor("The pagination cursor is malformed.") from None
