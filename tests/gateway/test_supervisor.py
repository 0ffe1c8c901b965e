"""`stapi-gateway serve --workers N`: real processes on loopback, one Redis, real stapi-fastapi providers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.supervisor import Supervisor
from tests.served import Served, free_port, run, served
from tests.upstreams import ProductSpec, build_provider, serve


class DelayedProducts:
    """A real provider whose `GET /products` answers only after `delay_s` (a slow provider on demand)."""

    def __init__(self, app: ASGIApp, delay_s: float) -> None:
        self.app, self.delay_s = app, delay_s
        self.arrived = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold `/products` back, note that it arrived; pass everything else straight on."""
        if scope["type"] == "http" and scope["path"] == "/products":
            self.arrived.set()
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)


async def get(gw: Served, path: str, request_id: str) -> httpx.Response:
    """GET on a fresh connection (a kept-alive one would stay with one worker: `served` keeps none)."""
    return await gw.client.get(path, headers={"X-Request-ID": request_id})


def answered_by(gw: Served, request_ids: set[str]) -> dict[str, int]:
    """Which process logged the request line of each of `request_ids`."""
    return {r["request_id"]: r["pid"] for r in gw.events("request") if r.get("request_id") in request_ids}


def write_config(path: Path, redis_url: str, prefix: str, providers: dict[str, str], title: str = "T") -> Path:
    """A gateway configuration on the test's Redis prefix with these providers."""
    body = (
        f"gateway:\n  title: {title}\n  store: {redis_url}\n  store_prefix: '{prefix}'\n  deadline_s: 10\nproviders:\n"
    )
    body += "".join(f"  {name}:\n    url: {url}\n    timeout_s: 10\n" for name, url in providers.items())
    path.write_text(body)
    return path


async def test_two_workers_answer_on_one_port_from_two_pids(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """Requests on fresh connections to the one port are served by both workers, never by the master."""
    async with serve(build_provider([ProductSpec("optical")], name="acme")) as acme_url:
        config = write_config(tmp_path / "gw.yaml", redis_url, redis_prefix, {"acme": acme_url})
        async with served(free_port(), config=config, workers=2) as gw:
            pids = await gw.ready_workers(2)
            sent: set[str] = set()
            for i in range(200):
                answer = await get(gw, "/products", f"spread-{i}")
                assert answer.status_code == 200
                sent.add(f"spread-{i}")
                if len(set(answered_by(gw, sent).values())) == 2:
                    break
            await gw.until(lambda: len(answered_by(gw, sent)) == len(sent), "every request's log line")
            answered = set(answered_by(gw, sent).values())
            master = gw.proc.pid
    assert answered == pids
    assert master not in pids


async def test_sighup_and_file_change_reach_every_worker(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """SIGHUP to the master reloads each worker in place; a file change is seen by each worker's own watch."""
    acme = build_provider([ProductSpec("optical")], name="acme")
    orbit = build_provider([ProductSpec("sar")], name="orbit")
    async with serve(acme) as acme_url, serve(orbit) as orbit_url:
        config = write_config(tmp_path / "gw.yaml", redis_url, redis_prefix, {"acme": acme_url}, title="Title-A1")
        async with served(free_port(), config=config, workers=2) as gw:
            pids = await gw.ready_workers(2)
            # Same size and mtime: only the signal can reveal this edit.
            stat = config.stat()
            write_config(config, redis_url, redis_prefix, {"acme": acme_url}, title="Title-B2")
            os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            os.kill(gw.proc.pid, signal.SIGHUP)
            by_signal = await gw.until(
                lambda: {r["pid"] for r in gw.events("config_reloaded") if r["reason"] == "signal"} == pids,
                "both workers reloaded on the signal",
            )
            titles = {(await get(gw, "/", f"title-{i}")).json()["title"] for i in range(10)}
            write_config(config, redis_url, redis_prefix, {"acme": acme_url, "orbit": orbit_url}, title="Title-B2")
            await gw.until(
                lambda: {r["pid"] for r in gw.events("config_reloaded") if r["reason"] == "file_change"} == pids,
                "both workers reloaded on the file change",
            )
            listings = [await get(gw, "/products", f"after-{i}") for i in range(10)]
            restarted = {r["worker"] for r in gw.events("worker_started")} - pids
    assert by_signal
    assert titles == {"Title-B2"}
    assert [sorted(p["id"] for p in answer.json()["products"]) for answer in listings] == [
        ["acme:optical", "orbit:sar"]
    ] * 10
    # A reload, not a restart: the same two processes throughout.
    assert restarted == set()


async def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """SIGTERM to the master while a worker waits on a slow provider: the answer still arrives, the master exits 0."""
    slow = DelayedProducts(build_provider([ProductSpec("optical")], name="acme"), delay_s=1.5)
    async with serve(slow) as acme_url:
        config = write_config(tmp_path / "gw.yaml", redis_url, redis_prefix, {"acme": acme_url})
        async with served(free_port(), config=config, workers=2) as gw:
            in_flight = asyncio.create_task(get(gw, "/products", "in-flight"))
            await asyncio.wait_for(slow.arrived.wait(), 10)
            gw.proc.send_signal(signal.SIGTERM)
            answer = await in_flight
            code = await asyncio.wait_for(gw.proc.wait(), 20)
            forwarded = gw.events("shutdown_forwarded")
            order = [r["event"] for r in gw.events("shutdown_forwarded") + gw.events("request")]
            logged = [json.loads(line).get("event") for line in gw.lines if line.startswith("{")]
    assert answer.status_code == 200
    # The request's own line was written after the master had passed SIGTERM on: it was in flight.
    assert sorted(order, key=logged.index) == ["shutdown_forwarded", "request"]
    assert [p["id"] for p in answer.json()["products"]] == ["acme:optical"]
    assert [r["signal"] for r in forwarded] == ["SIGTERM"]
    assert code == 0


async def test_a_killed_worker_is_replaced(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """SIGKILL to a worker: the master starts another, which serves; the survivor kept serving."""
    async with serve(build_provider([ProductSpec("optical")], name="acme")) as acme_url:
        config = write_config(tmp_path / "gw.yaml", redis_url, redis_prefix, {"acme": acme_url})
        async with served(free_port(), config=config, workers=2) as gw:
            first = await gw.ready_workers(2)
            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            now = await gw.ready_workers(3)
            replacement = (now - first).pop()
            sent: set[str] = set()
            for i in range(200):
                sent.add(f"after-kill-{i}")
                assert (await get(gw, "/products", f"after-kill-{i}")).status_code == 200
                if set(answered_by(gw, sent).values()) == {replacement, *(first - {victim})}:
                    break
            await gw.until(lambda: len(answered_by(gw, sent)) == len(sent), "every request's log line")
            answered = set(answered_by(gw, sent).values())
            died = [r["worker"] for r in gw.events("worker_died")]
    assert died == [victim]
    assert answered == {replacement, *(first - {victim})}


async def test_workers_stop_when_the_master_is_killed(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """SIGKILL to the master (no chance to pass anything on): its workers notice and shut down by themselves."""
    async with serve(build_provider([ProductSpec("optical")], name="acme")) as acme_url:
        config = write_config(tmp_path / "gw.yaml", redis_url, redis_prefix, {"acme": acme_url})
        async with served(free_port(), config=config, workers=2, check_exit=False) as gw:
            pids = await gw.ready_workers(2)
            gw.proc.kill()
            await gw.proc.wait()
            # The workers share the master's stderr: it ends once both have exited.
            await gw.output_ended(20)
    # Every line after the second worker's ready line (each must be JSON).
    ready_at = [i for i, line in enumerate(gw.lines) if '"worker_ready"' in line]
    rest = gw.lines[ready_at[1] + 1 :]
    finished = {
        int(r["event"].split("[")[1].rstrip("]")) for r in map(json.loads, rest) if "Finished server" in r["event"]
    }
    assert finished == pids


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--workers", "2"], {}, "--workers 2 needs a shared store: memory://"),
        ([], {"STAPI_GATEWAY_WORKERS": "3"}, "--workers 3 needs a shared store: memory://"),
        (["--workers", "0"], {}, "'0' is not a whole number of workers from 1 to 64"),
        (["--workers", "many"], {}, "'many' is not a whole number of workers from 1 to 64"),
    ],
)
def test_serve_refuses_workers_it_cannot_run(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    """Several workers on memory:// (state would split between processes), or a count that is not one: exit 2."""
    config = tmp_path / "gw.yaml"
    config.write_text("gateway:\n  store: memory://\nproviders:\n  a:\n    url: http://127.0.0.1:1\n")
    result = run("serve", "--config", str(config), "--port", str(free_port()), *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr


def test_workers_that_never_start_stop_the_master() -> None:
    """Every worker failing before it serves (uvicorn's start-up failure, 3) ends supervision with 1, not a loop."""
    assert Supervisor(2, "127.0.0.1", 0, lambda _sock, _serving: 3).run() == 1


def products_counted(exposition: str) -> int:
    """`stapi_gateway_requests_total` of `GET /products` in a scrape, over every status."""
    return int(
        sum(
            s.value
            for family in text_string_to_metric_families(exposition)
            for s in family.samples
            if s.name == "stapi_gateway_requests_total" and s.labels["operation"] == "list_products"
        )
    )


@dataclass
class Scrapes:
    """Every `/metrics` scrape of a test: the count of `/products` requests each showed, who answered."""

    gw: Served
    counts: list[int] = field(default_factory=list)
    request_ids: set[str] = field(default_factory=set)

    async def settled(self, made: int) -> int:
        """Scrape until the count is the `made` requests answered so far. Each worker counts a request
        just after its answer has left, so a scrape may run that far ahead of it, but never further:
        every scrape is at most `made` and never below the one before."""
        for _ in range(100):
            request_id = f"scrape-{len(self.counts)}"
            answer = await get(self.gw, "/metrics", request_id)
            assert answer.status_code == 200
            self.request_ids.add(request_id)
            count = products_counted(answer.text)
            assert count <= made
            assert count >= max(self.counts, default=0)
            self.counts.append(count)
            if count == made:
                return count
            await asyncio.sleep(0.05)
        raise AssertionError(f"scrapes never showed {made} requests: {self.counts}")

    def answered_by(self) -> set[int]:
        """The workers that answered scrapes."""
        return set(answered_by(self.gw, self.request_ids).values())


def metrics_files(tmp: Path) -> dict[str, set[int]]:
    """The masters' metrics directories under `tmp`, each with the pids its files were written by."""
    return {
        d.name: {int(f.stem.rsplit("_", 1)[1]) for f in d.glob("*.db")} for d in tmp.glob("stapi-gateway-metrics-*")
    }


async def test_every_scrape_counts_the_requests_of_both_workers(
    tmp_path: Path, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests and scrapes spread over two workers: whichever answers, a scrape shows every request
    made so far; the workers' files are in one private directory, gone once the master has stopped."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # where the master makes its directory
    async with serve(build_provider([ProductSpec("optical")], name="acme")) as acme_url:
        config = write_config(tmp_path / "gw.yaml", redis_url, redis_prefix, {"acme": acme_url})
        async with served(free_port(), config=config, workers=2) as gw:
            pids = await gw.ready_workers(2)
            scrapes, sent = Scrapes(gw), set[str]()
            for made in range(1, 201):
                assert (await get(gw, "/products", f"products-{made}")).status_code == 200
                sent.add(f"products-{made}")
                await scrapes.settled(made)
                if made >= 10 and len(set(answered_by(gw, sent).values())) == len(scrapes.answered_by()) == 2:
                    break
            every = sent | scrapes.request_ids
            await gw.until(lambda: len(answered_by(gw, every)) == len(every), "every request's log line")
            products_by, scrapes_by = set(answered_by(gw, sent).values()), scrapes.answered_by()
            files = metrics_files(tmp)
    assert products_by == scrapes_by == pids
    assert scrapes.counts[-1] == made >= 10
    assert list(files.values()) == [pids]  # one directory, written by the workers (never the master)
    assert metrics_files(tmp) == {}


async def test_a_killed_workers_requests_are_still_counted(
    tmp_path: Path, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL to a worker that served requests: scrapes still count them (prometheus_client keeps a
    dead process's counters by design), and its replacement's add on; only its live gauges go."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    async with serve(build_provider([ProductSpec("optical")], name="acme")) as acme_url:
        config = write_config(tmp_path / "gw.yaml", redis_url, redis_prefix, {"acme": acme_url})
        async with served(free_port(), config=config, workers=2) as gw:
            first = await gw.ready_workers(2)
            scrapes, sent, made = Scrapes(gw), set[str](), 0

            async def until_answered_by(wanted: set[int]) -> None:
                nonlocal made
                for _ in range(200):
                    made += 1
                    sent.add(f"products-{made}")
                    assert (await get(gw, "/products", f"products-{made}")).status_code == 200
                    if wanted <= set(answered_by(gw, sent).values()):
                        return
                raise AssertionError(f"{wanted} never all answered")

            await until_answered_by(first)
            before_kill = await scrapes.settled(made)
            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            replacement = (await gw.ready_workers(3) - first).pop()
            after_kill = await scrapes.settled(made)
            victim_files = sorted(f.name for f in tmp.glob(f"*/*_{victim}.db"))
            await until_answered_by({replacement})
            with_replacement = await scrapes.settled(made)
    assert before_kill == after_kill
    assert with_replacement == made > after_kill
    # mark_process_dead removed the victim's live gauge file (journal_deferred, livesum); counts stay.
    assert victim_files == [f"counter_{victim}.db", f"histogram_{victim}.db"]
