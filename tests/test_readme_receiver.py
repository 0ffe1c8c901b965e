"""The README's webhook receiver example runs as printed: it accepts a signed delivery once per id and
refuses a forged one."""

from __future__ import annotations

import re
import types
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from gateway.notify.subscriptions import new_secret

README = Path(__file__).resolve().parents[1] / "README.md"


def receiver_module(monkeypatch: pytest.MonkeyPatch, secret: str) -> types.ModuleType:
    """The README's `receiver.py` block, executed as a module with the given secret in its environment."""
    blocks = re.findall(r"```python\n(# receiver\.py\n.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "the README has one receiver example"
    monkeypatch.setenv("STAPI_WEBHOOK_SECRET", secret)
    module = types.ModuleType("receiver")
    # Our own README, run as the reader would run it.
    exec(compile(blocks[0], "README.md:receiver.py", "exec"), module.__dict__)
    return module


async def test_the_readme_receiver_verifies_and_drops_repeats(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A delivery signed with the subscription's secret is printed once, even when sent twice; a forged one is a 400."""
    secret = new_secret()
    module = receiver_module(monkeypatch, secret)
    data = {"order_id": "umbra:t1", "status_code": "accepted", "provider:status": "SCHEDULED", "status": {}}
    body = orjson.dumps({"type": "order.status", "timestamp": "2026-12-01T00:00:00.000Z", "data": data}).decode()
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("evt_1", now, body),
        "content-type": "application/json",
    }
    forged = {**headers, "webhook-signature": Webhook(new_secret()).sign("evt_1", now, body)}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=module.app), base_url="http://receiver") as client:
        first = await client.post("/hooks/stapi", content=body, headers=headers)
        again = await client.post("/hooks/stapi", content=body, headers=headers)
        bad = await client.post("/hooks/stapi", content=body, headers=forged)
    assert (first.status_code, again.status_code, bad.status_code) == (204, 204, 400)
    assert capsys.readouterr().out.splitlines() == ["umbra:t1 accepted SCHEDULED"]
