"""The `clients:` settings: inbound API keys from YAML and what each may reach.

```yaml
clients:
  broker-a:
    key_sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
    providers: [acme]          # provider ids this key may use; "*" = all
    products: [vhr-50cm]       # federated products this key may use; "*" = all
    rate_per_s: 20             # requests per second (429 with Retry-After beyond); per deployment with redis://
  ops:
    key: ${OPS_KEY}
    operator: true             # sees /readyz in detail and /metrics
  partner-b:
    key: ${PARTNER_B_KEY}      # or the key itself, from the environment
    providers: ["*"]
```
Authentication is on as soon as one client is configured. Keys are compared by their SHA-256,
so the configuration never needs to hold a key in clear.
"""

from __future__ import annotations

import hashlib
import re
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.settings.fields import PositiveFloat

ALL = "*"
CLIENT_ID = re.compile(r"^[a-z][a-z0-9-]{0,63}\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")


def key_digest(key: str) -> str:
    """The SHA-256 hex digest under which a key is looked up."""
    return hashlib.sha256(key.encode()).hexdigest()


class ClientSettings(BaseModel):
    """One API client: its key (clear or hashed), what it may use, and its request rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    key: str | None = Field(default=None, min_length=16, repr=False)
    key_sha256: str | None = None
    providers: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    rate_per_s: PositiveFloat | None = None
    burst: PositiveFloat | None = None
    # May read /readyz in detail and /metrics (which name every provider).
    operator: bool = False

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not CLIENT_ID.fullmatch(value):
            raise ValueError("client id must match ^[a-z][a-z0-9-]{0,63}$")
        return value

    @field_validator("key_sha256")
    @classmethod
    def _check_digest(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.fullmatch(value):
            raise ValueError("must be 64 lowercase hex digits (sha256sum of the key)")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of `key` and `key_sha256`")
        return self

    @property
    def digest(self) -> str:
        """The key's SHA-256, however it was configured."""
        return self.key_sha256 or key_digest(self.key or "")
