"""Deployment files agree with each other and with the code (no container engine or cluster here)."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import _parser
from gateway.settings.loader import load_settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S = ROOT / "deploy" / "kubernetes"
K8S_FILES = sorted(p.name for p in K8S.glob("*.yaml"))
SECRET_TEMPLATE = "secret.yaml"
# `$${` is the loader's escape for a literal `${`, so it is matched first and ignored.
VAR_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")


# --- helpers -----------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed (merge keys resolved)."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def services() -> dict[str, Any]:
    """The compose services by name."""
    result: dict[str, Any] = compose()["services"]
    return result


@cache
def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, rest = pending.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "Dockerfile ends in a continuation line"
    return instructions


def docker(keyword: str) -> list[str]:
    """The arguments of every `keyword` instruction, in order."""
    return [rest for kw, rest in dockerfile() if kw == keyword]


def final_stage() -> list[tuple[str, str]]:
    """The instructions of the last build stage (the runtime image)."""
    instructions = dockerfile()
    start = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[start:]


def docker_json(keyword: str) -> list[str]:
    """The exec-form (JSON) argument list of the last `keyword` instruction."""
    value: list[str] = json.loads(docker(keyword)[-1])
    return value


def option(argv: list[str], name: str) -> str:
    """The value following `name` in an argument vector."""
    return argv[argv.index(name) + 1]


@cache
def k8s_docs(name: str) -> tuple[dict[str, Any], ...]:
    """Every non-empty document of one file under deploy/kubernetes."""
    with (K8S / name).open() as stream:
        return tuple(doc for doc in yaml.safe_load_all(stream) if doc is not None)


def k8s(kind: str) -> dict[str, Any]:
    """The one Kubernetes object of `kind` among the manifests."""
    found = [doc for name in K8S_FILES for doc in k8s_docs(name) if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    """The Deployment's pod spec."""
    spec: dict[str, Any] = k8s("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    """The gateway container of the Deployment."""
    containers = pod_spec()["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def container_env() -> dict[str, dict[str, Any]]:
    """The gateway container's env entries by name."""
    return {entry["name"]: entry for entry in container()["env"]}


def gateway_yaml() -> str:
    """The gateway configuration held by the ConfigMap."""
    text: str = k8s("ConfigMap")["data"]["gateway.yaml"]
    return text


def referenced_vars(node: Any) -> Iterator[str]:
    """Every `${VAR}` name in the string values of a parsed YAML tree (where the loader looks)."""
    if isinstance(node, str):
        yield from (m.group(1) for m in VAR_REF.finditer(node) if m.group(1) is not None)
    elif isinstance(node, dict):
        for value in node.values():
            yield from referenced_vars(value)
    elif isinstance(node, list):
        for item in node:
            yield from referenced_vars(item)


def resolve_port(port: int | str) -> int:
    """A container port reference (number or name) as the container's port number."""
    by_name = {p["name"]: p["containerPort"] for p in container()["ports"]}
    return port if isinstance(port, int) else by_name[port]


# --- compose -----------------------------------------------------------------------------------


def test_compose_has_gateway_redis_and_two_providers() -> None:
    """The services the README promises exist, and the gateway's store is the compose Redis."""
    assert {"gateway", "redis", "acme", "orbit"} <= set(services())
    assert services()["gateway"]["environment"]["STAPI_GATEWAY_STORE"].startswith("redis://redis:")


@pytest.mark.parametrize("name", ["gateway", "acme", "orbit"])
def test_compose_commands_are_valid_cli_invocations(name: str) -> None:
    """Every service command built from our image parses with the real CLI parser."""
    args = _parser().parse_args(services()[name]["command"])
    assert args.command in {"serve", "simulate"}
    assert args.host == "0.0.0.0"


def test_compose_gateway_config_is_valid_and_matches_provider_services() -> None:
    """The mounted YAML loads and names the provider services on the ports they listen on."""
    gateway = services()["gateway"]
    mount = next(v for v in gateway["volumes"] if v.endswith(":ro"))
    host_dir, container_dir, _ = mount.split(":")
    config_path = gateway["environment"]["STAPI_GATEWAY_CONFIG"]
    assert Path(config_path).parent == Path(container_dir)
    settings = load_settings(ROOT / host_dir / Path(config_path).name, environ={"STAPI_GATEWAY_SECRET": "s"})
    assert set(settings.providers) == {"acme", "orbit"}
    for pid, provider in settings.providers.items():
        command = services()[pid]["command"]
        assert provider.base_url == f"http://{pid}:{option(command, '--port')}"


def test_compose_config_path_matches_the_image() -> None:
    """The compose gateway reads its config where the image's STAPI_GATEWAY_CONFIG points."""
    assert f"STAPI_GATEWAY_CONFIG={services()['gateway']['environment']['STAPI_GATEWAY_CONFIG']}" in " ".join(
        docker("ENV")
    )


@pytest.mark.parametrize("name", sorted(compose()["services"]))
def test_compose_every_service_has_a_healthcheck(name: str) -> None:
    """Each service declares a real health check command."""
    check = services()[name]["healthcheck"]
    assert not check.get("disable", False)
    assert check["test"][0] in {"CMD", "CMD-SHELL"}
    assert {"interval", "timeout", "retries"} <= set(check)


@pytest.mark.parametrize(("name", "path"), [("acme", "/products"), ("orbit", "/products"), ("gateway", "/readyz")])
def test_compose_http_healthchecks_probe_the_served_port(name: str, path: str) -> None:
    """The image's services are probed with python urllib on the port their command serves."""
    service = services()[name]
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "urllib.request" in test[3]
    assert f"http://127.0.0.1:{option(service['command'], '--port')}{path}'" in test[3]


def test_compose_gateway_waits_for_every_dependency_to_be_healthy() -> None:
    """The gateway starts after Redis and both providers pass their health checks."""
    depends_on = services()["gateway"]["depends_on"]
    assert set(depends_on) == {"redis", "acme", "orbit"}
    for name, condition in depends_on.items():
        assert condition["condition"] == "service_healthy"
        assert "healthcheck" in services()[name]


def test_compose_redis_persists_to_a_volume() -> None:
    """Redis writes an append-only file into /data, a named volume that outlives the container."""
    redis = services()["redis"]
    command = redis["command"]
    assert option(command, "--appendonly") == "yes"
    assert option(command, "--maxmemory-policy") == "noeviction"
    volume, _, target = next(v for v in redis["volumes"] if v.split(":")[1] == "/data").partition(":")
    assert target == "/data"
    assert volume in compose()["volumes"]


# --- Dockerfile --------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    """A build stage and a runtime stage, both from python:3.11-slim."""
    stages = docker("FROM")
    assert len(stages) >= 2
    assert all(stage.split()[0] == "python:3.11-slim" for stage in stages)


def test_dockerfile_copies_only_what_the_install_needs() -> None:
    """The build context contributes pyproject.toml, uv.lock, README.md, gateway/ and adapters/, nothing else."""
    sources = set()
    for rest in docker("COPY"):
        words = rest.split()
        if any(word.startswith("--from") for word in words):
            continue
        sources |= {word.rstrip("/") for word in words[:-1] if not word.startswith("--")}
    assert sources == {"pyproject.toml", "uv.lock", "README.md", "gateway", "adapters"}
    assert all((ROOT / source).exists() for source in sources)


def test_dockerfile_runs_as_non_root_uid_10001() -> None:
    """The runtime stage ends as numeric uid 10001, so Kubernetes' runAsNonRoot can verify it."""
    users = [rest for kw, rest in final_stage() if kw == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid == "10001"
    assert gid in {"", "10001"}
    assert pod_spec()["securityContext"]["runAsUser"] == int(uid)


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    """ENTRYPOINT is the `stapi-gateway` script that pyproject.toml installs."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert docker_json("ENTRYPOINT") == ["stapi-gateway"]
    assert scripts["stapi-gateway"] == "gateway.cli:main"


def test_dockerfile_cmd_parses_and_serves_the_exposed_port() -> None:
    """CMD is a valid `serve` on all interfaces, on the port EXPOSE declares."""
    args = _parser().parse_args(docker_json("CMD"))
    assert (args.command, args.host) == ("serve", "0.0.0.0")
    assert docker("EXPOSE") == [str(args.port)]


def test_dockerfile_sets_the_config_path() -> None:
    """STAPI_GATEWAY_CONFIG points at /etc/stapi-gateway/gateway.yaml in the image."""
    assert "STAPI_GATEWAY_CONFIG=/etc/stapi-gateway/gateway.yaml" in " ".join(docker("ENV")).split()


def test_dockerfile_healthcheck_probes_healthz_with_urllib() -> None:
    """HEALTHCHECK runs python urllib against /healthz on the served port."""
    rest = docker("HEALTHCHECK")[-1]
    command = json.loads(rest[rest.index("CMD") + len("CMD") :])
    assert command[:2] == ["python", "-c"]
    port = _parser().parse_args(docker_json("CMD")).port
    assert "urllib.request" in command[2]
    assert f"http://127.0.0.1:{port}/healthz'" in command[2]


def test_dockerfile_installs_exactly_the_lock() -> None:
    """The build stage's only install is `uv sync --frozen` of the base dependencies and the `otel`
    extra (tracing is a setting away); the runtime copies it."""
    build = dockerfile()[: max(i for i, (kw, _) in enumerate(dockerfile()) if kw == "FROM")]
    runs = [rest for kw, rest in build if kw == "RUN"]
    (sync,) = [run.split() for run in runs if "uv sync" in run]
    assert {"--frozen", "--no-editable", "--no-dev"} <= set(sync)
    extras = [sync[i + 1] for i, word in enumerate(sync) if word == "--extra"]
    assert extras == ["otel"], "test and bench extras stay out of the image"
    assert "--all-extras" not in sync
    (pip,) = [run for run in runs if "pip install" in run]
    assert pip.split()[-1] == '"uv==${UV_VERSION}"', "pip installs uv alone; everything else comes from the lock"
    env = " ".join(rest for kw, rest in build if kw == "ENV").split()
    venv = next(word.partition("=")[2] for word in env if word.startswith("UV_PROJECT_ENVIRONMENT="))
    runtime = final_stage()
    assert not [rest for kw, rest in runtime if kw == "RUN" and ("pip " in rest or "uv " in rest)]
    assert ("COPY", f"--from=build {venv} {venv}") in runtime
    assert f"PATH={venv}/bin:$PATH" in " ".join(rest for kw, rest in runtime if kw == "ENV").split()


def test_uv_version_is_the_same_for_the_scripts_and_the_image() -> None:
    """deploy/Dockerfile's UV_VERSION is the one scripts/_venv.sh bootstraps."""
    (arg,) = [rest for rest in docker("ARG") if rest.startswith("UV_VERSION=")]
    script = re.search(r"^UV_VERSION=(\S+)$", (ROOT / "scripts" / "_venv.sh").read_text(), re.MULTILINE)
    assert script is not None
    assert arg.partition("=")[2] == script.group(1)


def test_scripts_install_only_from_the_lock() -> None:
    """scripts/ and .ci/run install with `uv sync --frozen`; pip only bootstraps uv; CI checks the lock."""
    sources = {path.name: path.read_text() for path in [*(ROOT / "scripts").iterdir(), ROOT / ".ci" / "run"]}
    pips = [line for text in sources.values() for line in text.splitlines() if "pip install" in line]
    assert pips
    assert all(line.split()[-1] == '"uv==$UV_VERSION"' for line in pips)
    assert "sync --quiet --frozen" in sources["_venv.sh"]
    assert "lock --check" in sources["run"]
    assert (ROOT / "uv.lock").is_file()


# --- Kubernetes --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", K8S_FILES)
def test_kubernetes_manifest_parses(name: str) -> None:
    """Each YAML file parses (every document) and each object names its apiVersion, kind and name."""
    docs = k8s_docs(name)
    assert docs
    for doc in docs:
        assert {"apiVersion", "kind"} <= set(doc)
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"]


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    """Resources are exactly the files present, minus secret.yaml, which must never be applied as is."""
    kustomization = k8s("Kustomization")
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    assert set(resources) == set(K8S_FILES) - {"kustomization.yaml", SECRET_TEMPLATE}


def test_secret_template_is_marked_and_in_the_namespace() -> None:
    """secret.yaml says it is a template, holds only placeholders and targets the app's namespace."""
    secret = k8s("Secret")
    assert secret["metadata"]["annotations"]["stapi-gateway/template"] == "true"
    assert all(value.startswith("REPLACE-ME") for value in secret["stringData"].values())
    assert "TEMPLATE" in (K8S / SECRET_TEMPLATE).read_text()
    namespace = k8s("Kustomization")["namespace"]
    assert secret["metadata"]["namespace"] == namespace == k8s("Namespace")["metadata"]["name"]


def test_deployment_image_is_rewritten_by_kustomize() -> None:
    """The container image's name is one that kustomization.yaml's `images` rewrites."""
    name = container()["image"].rsplit(":", 1)[0]
    assert name in {entry["name"] for entry in k8s("Kustomization")["images"]}


def test_deployment_args_are_a_valid_serve_command() -> None:
    """The container args parse with the real CLI parser as `serve` on all interfaces."""
    args = _parser().parse_args(container()["args"])
    assert (args.command, args.host) == ("serve", "0.0.0.0")
    assert "command" not in container(), "command would replace the image's ENTRYPOINT"


def test_ports_agree_across_deployment_service_probes_and_image() -> None:
    """containerPort = serve --port = Service targetPort = every probe's port = the image's EXPOSE."""
    port = _parser().parse_args(container()["args"]).port
    assert [p["containerPort"] for p in container()["ports"]] == [port]
    assert docker("EXPOSE") == [str(port)]
    (service_port,) = k8s("Service")["spec"]["ports"]
    assert (service_port["name"], service_port["port"]) == ("http", 80)
    assert resolve_port(service_port["targetPort"]) == port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert resolve_port(container()[probe]["httpGet"]["port"]) == port
    assert k8s("Service")["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize(
    ("probe", "path"), [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]
)
def test_probe_paths(probe: str, path: str) -> None:
    """Liveness and startup ask /healthz (the process serves); readiness asks /readyz (it can serve)."""
    assert container()[probe]["httpGet"]["path"] == path


def test_config_env_is_the_configmap_mount_path_and_key() -> None:
    """STAPI_GATEWAY_CONFIG is the ConfigMap's directory mount plus its key (no subPath, so edits arrive)."""
    config = Path(container_env()["STAPI_GATEWAY_CONFIG"]["value"])
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    mount = next(m for m in container()["volumeMounts"] if m["mountPath"] == str(config.parent))
    assert "subPath" not in mount
    assert mount["readOnly"] is True
    source = volumes[mount["name"]]["configMap"]
    assert source["name"] == k8s("ConfigMap")["metadata"]["name"]
    (item,) = source["items"]
    assert item["path"] == config.name
    assert item["key"] in k8s("ConfigMap")["data"]


def test_secret_key_refs_exist_in_the_secret() -> None:
    """Every secretKeyRef names the Secret of secret.yaml and one of its keys."""
    secret = k8s("Secret")
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    refs = [
        e["valueFrom"]["secretKeyRef"] for e in container_env().values() if "secretKeyRef" in e.get("valueFrom", {})
    ]
    assert refs
    for ref in refs:
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in keys


def test_configmap_variables_are_provided_by_the_deployment() -> None:
    """Every ${VAR} in the ConfigMap's gateway YAML is an env var of the gateway container."""
    wanted = set(referenced_vars(yaml.safe_load(gateway_yaml())))
    assert {"STAPI_GATEWAY_SECRET", "ACME_TOKEN"} <= wanted
    assert wanted <= set(container_env())


def test_configmap_gateway_yaml_loads(tmp_path: Path) -> None:
    """The ConfigMap's gateway YAML passes load_settings, with Redis as the store and the env's values
    (the Deployment's own where it gives one, a dummy for a Secret's); tracing off until turned on."""
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway_yaml())
    environ = {
        name: container_env()[name].get("value", f"dummy-{name.lower()}")
        for name in referenced_vars(yaml.safe_load(gateway_yaml()))
    }
    settings = load_settings(path, environ=environ)
    assert settings.gateway.tracing is False
    assert settings.gateway.store.startswith(("redis://", "rediss://"))
    assert settings.gateway.secret == environ["STAPI_GATEWAY_SECRET"]
    assert settings.providers["acme"].headers["Authorization"] == f"Bearer {environ['ACME_TOKEN']}"


def test_replicas_and_autoscaler() -> None:
    """At least two replicas, and a CPU-based autoscaling/v2 HPA on the Deployment from 2 to 10."""
    deployment = k8s("Deployment")
    hpa = k8s("HorizontalPodAutoscaler")
    assert deployment["spec"]["replicas"] >= 2
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert "cpu" in container()["resources"]["requests"], "CPU utilisation is relative to the request"


@pytest.mark.parametrize(
    ("kind", "selector"),
    [
        pytest.param("Deployment", ("spec", "selector", "matchLabels"), id="deployment"),
        pytest.param("Service", ("spec", "selector"), id="service"),
        pytest.param("PodDisruptionBudget", ("spec", "selector", "matchLabels"), id="pdb"),
    ],
)
def test_selectors_match_the_pod_labels(kind: str, selector: tuple[str, ...]) -> None:
    """The Deployment, Service and PDB selectors all select the gateway pods."""
    node: Any = k8s(kind)
    for key in selector:
        node = node[key]
    labels = k8s("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert node
    assert node.items() <= labels.items()


def test_pdb_keeps_one_replica() -> None:
    """A policy/v1 PDB keeps at least one pod through voluntary disruptions, below the replica floor."""
    pdb = k8s("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["minAvailable"] < k8s("HorizontalPodAutoscaler")["spec"]["minReplicas"]


def test_rollout_and_shutdown_drain() -> None:
    """Rolling updates never drop capacity, and preStop sleeps well within the grace period."""
    strategy = k8s("Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert int(command[1]) > 0
    assert pod_spec()["terminationGracePeriodSeconds"] >= int(command[1]) + 10


def test_container_is_locked_down_and_bounded() -> None:
    """Non-root, read-only root, no privilege escalation or capabilities, with requests and limits."""
    context = container()["securityContext"]
    assert pod_spec()["securityContext"]["runAsNonRoot"] is True
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    resources = container()["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound])
    writable = {m["mountPath"] for m in container()["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp"}, "with a read-only root, only /tmp is writable"


def test_env_references_name_variables_defined_before_them() -> None:
    """Kubernetes expands `$(VAR)` in an env value only from entries listed above it; tracing's
    endpoint and resource attributes depend on that."""
    defined: set[str] = set()
    for entry in container()["env"]:
        for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", entry.get("value", "")):
            assert name in defined, f"{entry['name']} uses $({name}) before it is defined"
        defined.add(entry["name"])
    assert container_env()["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].endswith(":4318"), "OTLP/HTTP's port"
