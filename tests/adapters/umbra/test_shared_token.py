"""Two replicas on one Redis make one token exchange per token lifetime, together."""

from __future__ import annotations

import asyncio

import httpx

from tests.adapters.umbra.harness import fast_state, umbra_gateway, umbra_settings


async def _orders(client: httpx.AsyncClient) -> int:
    return (await client.get("/orders")).status_code


async def test_two_gateways_on_one_redis_mint_one_token(redis_url: str, redis_prefix: str) -> None:
    """Concurrent calls through two gateways share the one token the first exchange gave."""
    state = fast_state()
    settings = umbra_settings(state, store=redis_url, store_prefix=redis_prefix)
    async with umbra_gateway(state, settings=settings) as one, umbra_gateway(state, settings=settings) as two:
        answers = await asyncio.gather(*[_orders(c) for c in (one, two) for _ in range(5)])
        assert answers == [200] * 10
        assert state.token_exchanges == 1
        # The vendor forgets the token (revoked, or it expired early): one new exchange, shared again.
        state.tokens.clear()
        answers = await asyncio.gather(*[_orders(c) for c in (one, two) for _ in range(3)])
        assert answers == [200] * 6
        assert state.token_exchanges == 2
    # A third replica started later finds the token in the store.
    async with umbra_gateway(state, settings=settings) as three:
        assert await _orders(three) == 200
    assert state.token_exchanges == 2


async def test_the_store_holds_the_token_never_the_secret(redis_url: str, redis_prefix: str) -> None:
    """What is shared is the access token and its refresh time: the client secret is nowhere in Redis."""
    import redis.asyncio as aioredis

    state = fast_state()
    settings = umbra_settings(state, store=redis_url, store_prefix=redis_prefix)
    async with umbra_gateway(state, settings=settings) as client:
        assert await _orders(client) == 200
    connection = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in connection.scan_iter(f"{redis_prefix}*")]
        values = [await connection.get(key) for key in keys if await connection.type(key) == b"string"]
    finally:
        await connection.aclose()
    (token,) = state.tokens
    assert any(token.encode() in (v or b"") for v in values)
    assert not any(state.config.client_secret.encode() in (v or b"") for v in values)
