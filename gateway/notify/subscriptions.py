"""Clients' webhook subscriptions in the store: create, list, read and delete, each client its own.

A subscription is stored whole under its id (the secret with it: deliveries are signed with it)
and indexed per client, so listing one client's subscriptions, and finding who gets an event,
reads that client's index only.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from urllib.parse import urlsplit

from adapters.base import NotFound, RequestValidationFailed
from gateway.domain.addresses import non_public_host
from gateway.domain.errors import SubscriptionLimitReached
from gateway.domain.events import SUBSCRIBABLE, EventType
from gateway.domain.inputs import field_error
from gateway.notify.model import SUBSCRIPTION_KEY, SUBSCRIPTIONS_OF, Subscription
from gateway.settings.models import WebhookSettings
from gateway.store import Store

MAX_URL_CHARS = 2048


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _invalid(field: str, message: str, kind: str) -> RequestValidationFailed:
    return RequestValidationFailed("The subscription is invalid.", [field_error(["body", field], message, kind)])


def check_url(url: object, allow_private: bool) -> str:
    """A subscription URL as given, if it is one the gateway may deliver to; 422 otherwise.

    Names are resolved, and each address checked, at every delivery; here only what the URL
    itself says is refused (a literal private address, `localhost`, an internal suffix).
    """
    if not isinstance(url, str):
        raise _invalid("url", "must be a string", "string_type")
    if len(url) > MAX_URL_CHARS:
        raise _invalid("url", f"must be at most {MAX_URL_CHARS} characters", "string_too_long")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise _invalid("url", "is not a valid URL", "url_parsing") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _invalid("url", "must be an http or https URL with a host", "url_scheme")
    if parts.username is not None or parts.password is not None:
        raise _invalid("url", "must not carry credentials", "url_credentials")
    try:
        host.encode("idna")  # what name resolution will do with it at every delivery
    except UnicodeError:
        raise _invalid("url", "has a host that is not a valid DNS name", "url_host") from None
    if not allow_private and non_public_host(host):
        raise _invalid(
            "url",
            "names a loopback, link-local or private host; the operator allows these with "
            "gateway.webhooks.allow_private",
            "url_not_public",
        )
    return url


def check_events(events: object) -> frozenset[EventType]:
    """The event types asked for: a non-empty list of known names."""
    if not isinstance(events, list) or not events:
        raise _invalid("events", "must be a non-empty list of event types", "list_type")
    known = {e.value: e for e in SUBSCRIBABLE}
    chosen = set()
    for i, name in enumerate(events):
        if not isinstance(name, str) or name not in known:
            allowed = ", ".join(sorted(known))
            raise RequestValidationFailed(
                "The subscription is invalid.",
                [field_error(["body", "events", i], f"must be one of: {allowed}", "enum")],
            )
        chosen.add(known[name])
    return frozenset(chosen)


class Subscriptions:
    """Every client's subscriptions, in the store."""

    def __init__(self, store: Store, settings: WebhookSettings) -> None:
        self.store = store
        self.settings = settings

    async def create(self, client: str, url: object, events: object) -> Subscription:
        """A new subscription for `client` (its secret is in the answer, and shown only then)."""
        checked_url = check_url(url, self.settings.allow_private)
        chosen = check_events(events)
        index = SUBSCRIPTIONS_OF.format(client=client)
        held = await self.store.index_page(index, limit=self.settings.max_subscriptions)
        if len(held) >= self.settings.max_subscriptions:
            raise SubscriptionLimitReached(
                f"A client may hold at most {self.settings.max_subscriptions} subscriptions; delete one first."
            )
        subscription = Subscription(
            id=uuid.uuid4().hex,
            client=client,
            url=checked_url,
            events=chosen,
            secret=new_secret(),
            created=time.time(),
        )
        # Stored before it is indexed: an index entry never names a subscription that is not there.
        await self.store.set(SUBSCRIPTION_KEY.format(id=subscription.id), subscription.to_json())
        await self.store.index_add(index, subscription.id, subscription.created)
        return subscription

    async def of_client(self, client: str) -> list[Subscription]:
        """A client's subscriptions, oldest first."""
        index = SUBSCRIPTIONS_OF.format(client=client)
        found = []
        for sub_id, _ in await self.store.index_page(index, limit=self.settings.max_subscriptions):
            raw = await self.store.get(SUBSCRIPTION_KEY.format(id=sub_id))
            if raw is None:
                await self.store.index_remove(index, sub_id)
            else:
                found.append(Subscription.from_json(raw))
        return found

    async def load(self, sub_id: str) -> Subscription | None:
        """A subscription by id, whoever holds it (for delivery); None once deleted."""
        raw = await self.store.get(SUBSCRIPTION_KEY.format(id=sub_id))
        return None if raw is None else Subscription.from_json(raw)

    async def get(self, client: str, sub_id: str) -> Subscription:
        """One of the client's subscriptions; another client's is as absent as one never made."""
        found = await self.load(sub_id) if len(sub_id) <= 64 else None
        if found is None or found.client != client:
            raise NotFound(f"No subscription '{sub_id[:64]}' exists.")
        return found

    async def delete(self, client: str, sub_id: str) -> None:
        """Delete one of the client's subscriptions: nothing more is delivered to it."""
        found = await self.get(client, sub_id)
        await self.store.delete(SUBSCRIPTION_KEY.format(id=found.id))
        await self.store.index_remove(SUBSCRIPTIONS_OF.format(client=client), found.id)
