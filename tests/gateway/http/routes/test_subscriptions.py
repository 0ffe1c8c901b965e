"""Webhook subscriptions over HTTP: each client's own, URLs the gateway may deliver to, secrets shown once."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.clients import AS_A, AS_B, two_clients
from tests.gateway.notify.receivers import Receiver
from tests.gateways import GATEWAY_URL, gateway_client
from tests.upstreams import ProductSpec, build_provider, serve
from tests.waiting import eventually

CLIENTS = two_clients(a_products=())
HOOK = {"url": "https://hooks.example.com/stapi?tenant=7", "events": ["order.status", "search.completed"]}


def upstreams() -> dict[str, Any]:
    """One real provider (subscriptions don't reach it, the gateway needs one)."""
    return {"acme": build_provider([ProductSpec("eo")], name="acme")}


@pytest.fixture(params=["memory", "redis"])
def store_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The gateway's store: the memory one and the real Redis (keys under the test's prefix)."""
    if request.param == "memory":
        return {}
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return {"store": url, "store_prefix": prefix}


async def test_create_shows_the_secret_once(store_settings: dict[str, Any]) -> None:
    """201 with Location and a `whsec_` secret; GET, list and the Location never show the secret again."""
    async with gateway_client(upstreams(), **store_settings) as client:
        created = await client.post("/subscriptions", json=HOOK)
        assert created.status_code == 201, created.text
        body = created.json()
        one = await client.get(created.headers["location"].removeprefix(GATEWAY_URL))
        listed = await client.get("/subscriptions")
    assert body["secret"].startswith("whsec_")
    assert len(body["secret"]) > 40
    assert created.headers["cache-control"] == "no-store"
    assert body["url"] == HOOK["url"]
    assert body["events"] == ["order.status", "search.completed"]
    assert one.status_code == 200
    assert "secret" not in one.json()
    assert one.json()["id"] == body["id"]
    assert [s["id"] for s in listed.json()["subscriptions"]] == [body["id"]]
    assert body["secret"] not in listed.text + one.text


async def test_delete_stops_it(store_settings: dict[str, Any]) -> None:
    """DELETE is a 204 with no body; the subscription is gone from GET and list, and a second DELETE is 404."""
    async with gateway_client(upstreams(), **store_settings) as client:
        sub = (await client.post("/subscriptions", json=HOOK)).json()
        deleted = await client.delete(f"/subscriptions/{sub['id']}")
        again = await client.delete(f"/subscriptions/{sub['id']}")
        gone = await client.get(f"/subscriptions/{sub['id']}")
        listed = await client.get("/subscriptions")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert again.status_code == 404
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"
    assert listed.json()["subscriptions"] == []


async def test_a_client_sees_and_deletes_only_its_own(redis_url: str, redis_prefix: str) -> None:
    """Client B can't read, list or delete client A's subscription: to B it does not exist."""
    async with gateway_client(upstreams(), clients=CLIENTS, store=redis_url, store_prefix=redis_prefix) as client:
        sub = (await client.post("/subscriptions", json=HOOK, headers=AS_A)).json()
        read = await client.get(f"/subscriptions/{sub['id']}", headers=AS_B)
        deleted = await client.delete(f"/subscriptions/{sub['id']}", headers=AS_B)
        listed_b = await client.get("/subscriptions", headers=AS_B)
        listed_a = await client.get("/subscriptions", headers=AS_A)
        anonymous = await client.get("/subscriptions")
    assert read.status_code == 404
    assert deleted.status_code == 404
    assert listed_b.json()["subscriptions"] == []
    assert [s["id"] for s in listed_a.json()["subscriptions"]] == [sub["id"]]
    assert anonymous.status_code == 401


REFUSED = [
    ({"url": "http://127.0.0.1/hook", "events": ["order.status"]}, ["body", "url"], "url_not_public"),
    ({"url": "http://localhost:8080/hook", "events": ["order.status"]}, ["body", "url"], "url_not_public"),
    ({"url": "http://[::1]/hook", "events": ["order.status"]}, ["body", "url"], "url_not_public"),
    ({"url": "http://10.1.2.3/hook", "events": ["order.status"]}, ["body", "url"], "url_not_public"),
    ({"url": "http://169.254.169.254/latest", "events": ["order.status"]}, ["body", "url"], "url_not_public"),
    ({"url": "http://hooks.internal/x", "events": ["order.status"]}, ["body", "url"], "url_not_public"),
    ({"url": "ftp://hooks.example.com/x", "events": ["order.status"]}, ["body", "url"], "url_scheme"),
    ({"url": "https://u:p@hooks.example.com/x", "events": ["order.status"]}, ["body", "url"], "url_credentials"),
    ({"url": "https://hooks.example.com:99999/x", "events": ["order.status"]}, ["body", "url"], "url_parsing"),
    ({"url": "https://" + "a" * 2100 + ".com/", "events": ["order.status"]}, ["body", "url"], "string_too_long"),
    ({"url": "https://" + "a" * 64 + ".example.com/", "events": ["order.status"]}, ["body", "url"], "url_host"),
    ({"url": 7, "events": ["order.status"]}, ["body", "url"], "string_type"),
    ({"url": "https://hooks.example.com/x", "events": []}, ["body", "events"], "list_type"),
    ({"url": "https://hooks.example.com/x", "events": ["order.stat"]}, ["body", "events", 0], "enum"),
    ({"url": "https://hooks.example.com/x", "events": ["subscription.test"]}, ["body", "events", 0], "enum"),
    ({"url": "https://hooks.example.com/x", "events": ["order.status"], "x": 1}, ["body", "x"], "extra_forbidden"),
]


@pytest.mark.parametrize(("body", "loc", "kind"), REFUSED)
async def test_bad_subscriptions_are_422_naming_the_field(body: dict[str, Any], loc: list[Any], kind: str) -> None:
    """URLs the gateway won't deliver to and unknown events are 422s naming the field; nothing is stored."""
    async with gateway_client(upstreams()) as client:
        refused = await client.post("/subscriptions", json=body)
        listed = await client.get("/subscriptions")
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "validation_failed"
    assert [(e["loc"], e["type"]) for e in refused.json()["errors"]] == [(loc, kind)]
    assert listed.json()["subscriptions"] == []


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'{"url": "https://a.example.com", "events": ["order.status"]' + b"]" * 50]
)
async def test_malformed_bodies_are_client_errors(body: bytes) -> None:
    """A body that is not a JSON object is a 400 or 422, never a 500."""
    async with gateway_client(upstreams()) as client:
        response = await client.post("/subscriptions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422)
    assert response.json()["code"] in ("invalid_request", "validation_failed")


async def test_private_urls_are_accepted_when_the_operator_allows_them() -> None:
    """With `gateway.webhooks.allow_private` the demo's and tests' loopback receivers can subscribe."""
    async with gateway_client(upstreams(), webhooks={"allow_private": True}) as client:
        created = await client.post("/subscriptions", json={**HOOK, "url": "http://127.0.0.1:9/hook"})
    assert created.status_code == 201, created.text


async def test_a_client_holds_at_most_max_subscriptions() -> None:
    """One past `gateway.webhooks.max_subscriptions` is a 409 that says so; deleting one makes room."""
    async with gateway_client(upstreams(), webhooks={"max_subscriptions": 2}) as client:
        made = [(await client.post("/subscriptions", json=HOOK)).json() for _ in range(2)]
        third = await client.post("/subscriptions", json=HOOK)
        await client.delete(f"/subscriptions/{made[0]['id']}")
        after = await client.post("/subscriptions", json=HOOK)
    assert third.status_code == 409
    assert third.json()["code"] == "subscription_limit_reached"
    assert after.status_code == 201


async def test_unknown_ids_are_404_without_echoing_a_long_id() -> None:
    """A made-up or overlong id is a 404 whose detail stays short."""
    async with gateway_client(upstreams()) as client:
        response = await client.get("/subscriptions/" + "x" * 5000)
    assert response.status_code == 404
    assert len(response.json()["detail"]) < 200


async def test_a_test_event_is_delivered_signed_and_listed(redis_url: str, redis_prefix: str) -> None:
    """`POST .../test` is a 202; a real receiver on loopback gets it signed; `deliveries` shows it delivered."""
    receiver = Receiver()
    settings: dict[str, Any] = {"store": redis_url, "store_prefix": redis_prefix, "webhooks": {"allow_private": True}}
    async with serve(receiver) as receiver_url, gateway_client(upstreams(), **settings) as client:
        sub = (await client.post("/subscriptions", json={**HOOK, "url": f"{receiver_url}/hooks"})).json()
        queued = await client.post(f"/subscriptions/{sub['id']}/test")
        await eventually(lambda: bool(receiver.delivered()))
        listed = await client.get(f"/subscriptions/{sub['id']}/deliveries")
    assert queued.status_code == 202, queued.text
    got = receiver.delivered()[0]
    event = Webhook(sub["secret"]).verify(got.body, got.headers)
    assert event["type"] == "subscription.test"
    assert event["data"] == {"subscription_id": sub["id"]}
    assert got.event_id == queued.json()["event_id"]
    [delivery] = listed.json()["deliveries"]
    assert delivery["state"] == "delivered"
    assert delivery["event_id"] == got.event_id
    assert [a["status"] for a in delivery["attempts"]] == [204]


async def test_deliveries_are_paged_newest_first_and_only_the_owners() -> None:
    """Three test events: pages of two then one, newest first, under a signed cursor; B sees A's as absent."""
    async with gateway_client(upstreams(), clients=CLIENTS) as client:
        sub = (await client.post("/subscriptions", json=HOOK, headers=AS_A)).json()
        sent = [(await client.post(f"/subscriptions/{sub['id']}/test", headers=AS_A)).json() for _ in range(3)]
        first = (await client.get(f"/subscriptions/{sub['id']}/deliveries?limit=2", headers=AS_A)).json()
        after = next(link["href"] for link in first["links"] if link["rel"] == "next")
        second = (await client.get(after.removeprefix(GATEWAY_URL), headers=AS_A)).json()
        forged = await client.get(f"/subscriptions/{sub['id']}/deliveries?next=abc.def", headers=AS_A)
        theirs = await client.get(f"/subscriptions/{sub['id']}/deliveries", headers=AS_B)
        test_theirs = await client.post(f"/subscriptions/{sub['id']}/test", headers=AS_B)
    shown = [d["id"] for d in first["deliveries"] + second["deliveries"]]
    assert shown == [d["id"] for d in reversed(sent)]
    assert not any(link["rel"] == "next" for link in second["links"])
    assert forged.status_code == 400
    assert theirs.status_code == 404
    assert test_theirs.status_code == 404
