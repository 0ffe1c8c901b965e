"""Shared fixtures: a real Redis (tests.redis_server) and gateways in front of real upstreams."""

from __future__ import annotations

pytest_plugins = ["tests.redis_server", "tests.redis_topologies"]
