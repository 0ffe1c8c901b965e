"""The compose file and its gateway configuration agree with the code (no container engine here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.cli import _parser
from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_has_gateway_redis_and_two_providers() -> None:
    """The services the README promises exist, and the gateway waits for a healthy Redis."""
    services = compose()["services"]
    assert {"gateway", "redis", "acme", "orbit"} <= set(services)
    assert services["gateway"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["gateway"]["environment"]["STAPI_GATEWAY_STORE"].startswith("redis://redis:")


def test_compose_commands_are_valid_cli_invocations() -> None:
    """Every service command built from our image parses with the real CLI parser."""
    for name in ("gateway", "acme", "orbit"):
        args = _parser().parse_args(compose()["services"][name]["command"])
        assert args.command in {"serve", "simulate"}


def test_compose_gateway_config_is_valid_and_matches_provider_services() -> None:
    """The mounted YAML loads and names the provider services on the ports they listen on."""
    services = compose()["services"]
    mount = next(v for v in services["gateway"]["volumes"] if v.endswith(":ro"))
    host_path, container_path, _ = mount.split(":")
    assert container_path == services["gateway"]["environment"]["STAPI_GATEWAY_CONFIG"]
    settings = load_settings(ROOT / host_path, environ={"STAPI_GATEWAY_SECRET": "s"})
    for pid, provider in settings.providers.items():
        command = services[pid]["command"]
        assert provider.base_url == f"http://{pid}:{command[command.index('--port') + 1]}"
