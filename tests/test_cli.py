"""The `stapi-gateway` command: check-config in-process, serve and demo as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from adapters.registry import ADAPTERS, simulated_vendors
from gateway.cli import main
from tests.served import free_port, run, served
from tests.upstreams import ProductSpec, build_provider, serve
from tests.waiting import eventually

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "gateway.yaml"


def test_check_config_accepts_the_example(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped example is valid once its variable is set; the summary names the providers."""
    monkeypatch.setenv("ACME_TOKEN", "t")
    assert main(["check-config", str(EXAMPLE)]) == 0
    assert "acme, orbit" in capsys.readouterr().out


def test_check_config_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each problem is printed with file and key path, and the exit status is non-zero."""
    config = tmp_path / "gw.yaml"
    config.write_text("gateway:\n  deadline_s: -1\n  colour: red\nproviders:\n  Bad:\n    url: http://x\n")
    assert main(["check-config", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"{config}: gateway.deadline_s:" in out
    assert f"{config}: gateway.colour:" in out
    assert f"{config}: providers.Bad:" in out


def test_check_config_names_an_unknown_adapter_and_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`adapter: nosuch` is reported at its file and key path, naming the value and listing the adapters."""
    config = tmp_path / "gw.yaml"
    config.write_text("providers:\n  acme:\n    url: http://x\n    adapter: nosuch\n    options: {a: 1}\n")
    assert main(["check-config", str(config)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"{config}: providers.acme.adapter: unknown adapter 'nosuch' (adapters: {', '.join(ADAPTERS)})" in lines
    # The options of an unknown adapter cannot be judged: one mistake, one problem.
    assert not any("options" in line for line in lines)


def test_check_config_reports_unknown_adapter_options_at_their_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key the adapter's options model does not have is reported under `options`, in an include too."""
    config = tmp_path / "gw.yaml"
    config.write_text("include: [p/*.yaml]\nproviders:\n  acme:\n    url: http://x\n    options:\n      colour: red\n")
    (tmp_path / "p").mkdir()
    include = tmp_path / "p" / "orbit.yaml"
    include.write_text("id: orbit\nurl: http://y\nadapter: stapi\noptions:\n  pace: 3\n")
    assert main(["check-config", str(config)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"{config}: providers.acme.options.colour: unknown key (none are allowed here)" in lines
    assert f"{include}: options.pace: unknown key (none are allowed here)" in lines


def test_serve_refuses_a_bad_config_before_listening(tmp_path: Path) -> None:
    """`serve` with an invalid file prints the problems and exits non-zero without serving."""
    config = tmp_path / "gw.yaml"
    config.write_text("providers:\n  a:\n    url: http://127.0.0.1:1\n    timeout_s: ${NOT_SET_ANYWHERE}\n")
    result = run("serve", "--config", str(config))
    assert result.returncode == 1
    assert "NOT_SET_ANYWHERE" in result.stderr


async def test_serve_end_to_end_against_two_stapi_fastapi_providers(tmp_path: Path) -> None:
    """`stapi-gateway serve` lists both providers' products as provider:product with gateway links."""
    acme = build_provider([ProductSpec("optical"), ProductSpec("optical-hd", async_=True)], name="acme")
    orbit = build_provider([ProductSpec("sar")], name="orbit")
    async with serve(acme) as acme_url, serve(orbit) as orbit_url:
        (tmp_path / "providers").mkdir()
        (tmp_path / "providers" / "orbit.yaml").write_text(f"id: orbit\nurl: {orbit_url}\ntitle: Orbit\n")
        config = tmp_path / "gateway.yaml"
        config.write_text(
            "gateway:\n  title: E2E\n  deadline_s: 5\n"
            f"include: [providers/*.yaml]\nproviders:\n  acme:\n    url: {acme_url}\n"
            "    headers:\n      Authorization: Bearer ${E2E_TOKEN}\n"
        )
        port = free_port()
        async with served(port, config=config, env={"E2E_TOKEN": "e2e-secret-token"}) as gateway:
            listing = (await gateway.client.get("/products", headers={"X-Request-ID": "e2e-1"})).json()
            product = await gateway.client.get("/products/acme:optical-hd")
    ids = sorted(p["id"] for p in listing["products"])
    assert ids == ["acme:optical", "acme:optical-hd", "orbit:sar"]
    assert product.status_code == 200
    assert product.json()["id"] == "acme:optical-hd"
    self_href = next(link["href"] for link in product.json()["links"] if link["rel"] == "self")
    assert self_href == f"http://127.0.0.1:{port}/products/acme:optical-hd"
    records = gateway.records()
    assert any(r.get("request_id") == "e2e-1" and r.get("path") == "/products" for r in records), gateway.lines
    assert not [line for line in gateway.lines if "e2e-secret-token" in line]


async def test_demo_serves_products_of_two_providers() -> None:
    """`stapi-gateway demo` needs no config or Redis and shows both simulated vendors' products."""
    port = free_port()
    search = {
        "datetime": "2026-12-01T00:00:00Z/2026-12-03T00:00:00Z",
        "geometry": {"type": "Point", "coordinates": [9, 48]},
    }
    async with served(port, command="demo") as demo:
        body = (await demo.client.get("/products?limit=100")).json()
        found = await demo.client.post("/products/vhr-50cm/opportunities", json=search)
    providers = {p["id"].split(":")[0] for p in body["products"] if ":" in p["id"]}
    # The STAPI demo vendors and every simulated non-STAPI vendor, side by side.
    assert providers == {"acme", "orbit", *simulated_vendors()}
    assert "vhr-50cm" in [p["id"] for p in body["products"]]
    assert "federation:missing" not in body
    assert found.status_code == 200, found.text
    assert {f["properties"]["product_id"].split(":")[0] for f in found.json()["features"]} == {"acme", "orbit"}


async def test_running_gateway_reloads_on_sighup_and_on_file_change(tmp_path: Path) -> None:
    """A served gateway picks up a new title on SIGHUP and a new provider when its file changes."""
    acme = build_provider([ProductSpec("optical")], name="acme")
    orbit = build_provider([ProductSpec("sar")], name="orbit")
    async with serve(acme) as acme_url, serve(orbit) as orbit_url:
        config = tmp_path / "gateway.yaml"
        base = f"providers:\n  acme:\n    url: {acme_url}\n"
        config.write_text(f"gateway:\n  title: Title-A1\n{base}")
        port = free_port()
        async with served(port, config=config) as gateway:
            # Same size, same mtime: only the signal can reveal this edit.
            stat = config.stat()
            config.write_text(f"gateway:\n  title: Title-B2\n{base}")
            os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            os.kill(gateway.server_pid(), signal.SIGHUP)
            landing = await eventually(
                lambda: gateway.client.get("/"), until=lambda r: r.json()["title"] == "Title-B2", every_s=0.05
            )
            title = landing.json()["title"]
            config.write_text(f"gateway:\n  title: Title-B2\n{base}  orbit:\n    url: {orbit_url}\n")
            listed = await eventually(
                lambda: gateway.client.get("/products"), until=lambda r: len(r.json()["products"]) == 2, every_s=0.05
            )
            ids = sorted(p["id"] for p in listed.json()["products"])
    assert title == "Title-B2"
    assert ids == ["acme:optical", "orbit:sar"]
    reasons = [json.loads(line).get("reason") for line in gateway.lines if '"config_reloaded"' in line]
    assert reasons[:2] == ["signal", "file_change"]


def test_demo_on_a_busy_port_exits_at_once_without_the_banner() -> None:
    """A port in use: `demo` says so and exits 2 before starting vendors or printing 'Open ...'."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("demo", "--port", str(port))
    assert result.returncode == 2
    assert f"port {port}" in result.stderr
    assert "Open http" not in result.stderr


async def test_demo_vendors_listen_on_the_ports_asked_for() -> None:
    """`--vendor-port-base N` puts the simulated vendors on N and N+1 (so they can be curled directly)."""
    port, base = free_port(), free_port()
    while base + 1 == port or _in_use(base + 1):
        base = free_port()
    async with served(port, "--vendor-port-base", str(base), command="demo") as demo:
        assert (await demo.client.get("/products")).status_code == 200
        async with httpx.AsyncClient() as direct:
            vendors = [await direct.get(f"http://127.0.0.1:{p}/products") for p in (base, base + 1)]
    assert [v.status_code for v in vendors] == [200, 200]


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
