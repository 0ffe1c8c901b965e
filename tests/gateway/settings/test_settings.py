"""Tests for configuration loading: models, YAML files, includes, interpolation and problem reports."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.stapi.config import StapiOptions
from gateway.domain.errors import GatewayError
from gateway.settings.loader import check_config, load_settings
from gateway.settings.models import FederatedProduct, GatewaySettings, ProviderSettings, Settings
from gateway.settings.problems import ConfigError, ConfigProblem

REPO_ROOT = Path(__file__).resolve().parents[3]


def write(directory: Path, name: str, text: str) -> Path:
    """Write a dedented file under `directory`, creating parent folders."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    """The problems `load_settings` raises for `path`, rendered as the CLI prints them."""
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={} if environ is None else environ)
    assert check_config(path, environ={} if environ is None else environ) == caught.value.problems
    return [str(problem) for problem in caught.value.problems]


MINIMAL = """
providers:
  acme:
    url: http://127.0.0.1:9001
"""


# --- valid files ------------------------------------------------------------------------


def test_main_file_with_includes_loads_in_file_order(tmp_path: Path) -> None:
    """Inline providers come first, then included files in sorted glob order, with every field kept."""
    main = write(
        tmp_path,
        "gateway.yaml",
        """
        gateway:
          title: Test Gateway
          description: for tests
          public_url: https://gw.example.com/stapi/
          store: redis://localhost:6379/0
          deadline_s: 2.5
          secret: s3cret
          max_body_bytes: 4096
        include: [providers/*.yaml]
        providers:
          zeta:
            url: http://127.0.0.1:9000/root/
            title: Zeta
            timeout_s: 1
            max_connections: 7
            headers: {X-Api-Key: abc}
        """,
    )
    write(tmp_path, "providers/orbit.yaml", "id: orbit\nurl: http://127.0.0.1:9002\n")
    write(tmp_path, "providers/acme.yaml", "id: acme\nurl: http://127.0.0.1:9001\nadapter: stapi\n")

    settings = load_settings(main, environ={})

    assert list(settings.providers) == ["zeta", "acme", "orbit"]
    assert settings.source == str(main)
    gateway = settings.gateway
    assert (gateway.title, gateway.description, gateway.store) == (
        "Test Gateway",
        "for tests",
        "redis://localhost:6379/0",
    )
    assert (gateway.deadline_s, gateway.secret, gateway.max_body_bytes) == (2.5, "s3cret", 4096)
    assert gateway.public_base_url == "https://gw.example.com/stapi"
    zeta = settings.providers["zeta"]
    assert (zeta.base_url, zeta.display_title, zeta.timeout_s, zeta.max_connections) == (
        "http://127.0.0.1:9000/root",
        "Zeta",
        1.0,
        7,
    )
    assert zeta.headers == {"X-Api-Key": "abc"}
    acme = settings.providers["acme"]
    assert (acme.base_url, acme.display_title, acme.adapter, acme.timeout_s) == (
        "http://127.0.0.1:9001",
        "acme",
        "stapi",
        5.0,
    )
    assert check_config(main, environ={}) == []


def test_defaults_apply_when_gateway_section_is_absent(tmp_path: Path) -> None:
    """Without a `gateway:` section every gateway setting takes its documented default."""
    settings = load_settings(write(tmp_path, "g.yaml", MINIMAL), environ={})

    assert settings.gateway == GatewaySettings()
    assert settings.gateway.title == "STAPI Gateway"
    assert settings.gateway.store == "memory://"
    assert settings.gateway.public_base_url is None
    assert settings.gateway.deadline_s == 10


def test_shipped_example_loads() -> None:
    """`config/gateway.yaml` as shipped loads with its two example providers."""
    settings = load_settings(REPO_ROOT / "config" / "gateway.yaml", environ={"ACME_TOKEN": "tok"})

    assert list(settings.providers) == ["acme", "orbit"]
    assert [p.member_ids() for p in settings.products.values()] == [
        [("acme", "optical-50cm"), ("acme", "optical-30cm"), ("orbit", "sar-spotlight")]
    ]
    assert settings.providers["acme"].base_url == "http://127.0.0.1:9001"
    assert settings.providers["acme"].headers == {"Authorization": "Bearer tok"}
    assert settings.providers["orbit"].base_url == "http://127.0.0.1:9002"


def test_shipped_example_needs_acme_token() -> None:
    """Without ACME_TOKEN the shipped example reports exactly that variable."""
    path = REPO_ROOT / "config" / "gateway.yaml"
    found = problems(path)

    assert len(found) == 1
    assert "ACME_TOKEN" in found[0]
    assert "acme.yaml: headers.Authorization" in found[0]


def test_os_environ_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `environ=`, variables set after import are seen."""
    main = write(tmp_path, "g.yaml", MINIMAL.replace("9001", "${PORT}"))
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.delenv("STAPI_GATEWAY_STORE", raising=False)

    assert load_settings(main).providers["acme"].base_url == "http://127.0.0.1:9100"


# --- interpolation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "environ", "expected"),
    [
        ("Bearer ${TOKEN}", {"TOKEN": "abc"}, "Bearer abc"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
        ("$${TOKEN}", {}, "${TOKEN}"),
        ("$${A} ${A}", {"A": "x"}, "${A} x"),
        ("cost $5 and $$", {}, "cost $5 and $$"),
        ("${EMPTY}", {"EMPTY": ""}, ""),
        ("${T}", {"T": "${NOT_EXPANDED_AGAIN}"}, "${NOT_EXPANDED_AGAIN}"),
    ],
)
def test_interpolation_in_header_values(tmp_path: Path, raw: str, environ: dict[str, str], expected: str) -> None:
    """`${VAR}` is substituted once, `$${` yields a literal `${`, other dollars stay as written."""
    main = write(tmp_path, "g.yaml", MINIMAL + f"    headers:\n      X-Test: '{raw}'\n")

    assert load_settings(main, environ=environ).providers["acme"].headers == {"X-Test": expected}


def test_interpolation_reaches_urls_numbers_gateway_and_includes(tmp_path: Path) -> None:
    """Every string scalar is interpolated: URLs, numbers written as strings, gateway keys, includes."""
    main = write(
        tmp_path,
        "g.yaml",
        """
        gateway: {title: "${NAME} gateway", deadline_s: "${DEADLINE}"}
        include: ["${DIR}/*.yaml"]
        providers:
          acme: {url: "http://${HOST}:9001"}
        """,
    )
    write(tmp_path, "extra/orbit.yaml", "id: orbit\nurl: http://${HOST}:9002\n")
    environ = {"NAME": "Test", "DEADLINE": "3", "DIR": "extra", "HOST": "10.0.0.1"}

    settings = load_settings(main, environ=environ)

    assert settings.gateway.title == "Test gateway"
    assert settings.gateway.deadline_s == 3.0
    assert [p.base_url for p in settings.providers.values()] == ["http://10.0.0.1:9001", "http://10.0.0.1:9002"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("Bearer ${ACME_TOKEN}", "environment variable ACME_TOKEN is not set"),
        ("${}", "invalid variable reference '${}'"),
        ("${NOT-A-NAME}", "invalid variable reference '${NOT-A-NAME}'"),
        ("${UNCLOSED", "unterminated '${'"),
    ],
)
def test_bad_reference_names_variable_file_and_key(tmp_path: Path, raw: str, message: str) -> None:
    """An unset or malformed `${...}` is a problem with the file, the key path and the variable."""
    main = write(tmp_path, "g.yaml", MINIMAL + f"    headers:\n      Authorization: '{raw}'\n")

    [found] = problems(main)

    assert found.startswith(f"{main}: providers.acme.headers.Authorization: {message}")


def test_unset_variable_in_list_uses_index_in_key_path(tmp_path: Path) -> None:
    """List items are addressed as `[index]` in key paths."""
    main = write(tmp_path, "g.yaml", MINIMAL + "include: ['${MISSING}/*.yaml']\n")

    assert f"{main}: include[0]: environment variable MISSING is not set" in problems(main)


# --- store override ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "redis://file:6379/0"),
        ({"STAPI_GATEWAY_STORE": ""}, "redis://file:6379/0"),
        ({"STAPI_GATEWAY_STORE": "memory://"}, "memory://"),
        ({"STAPI_GATEWAY_STORE": "rediss://env:6380/1"}, "rediss://env:6380/1"),
    ],
)
def test_store_env_overrides_file_when_non_empty(tmp_path: Path, environ: dict[str, str], expected: str) -> None:
    """STAPI_GATEWAY_STORE replaces `gateway.store` unless it is unset or empty."""
    main = write(tmp_path, "g.yaml", "gateway: {store: 'redis://file:6379/0'}\n" + MINIMAL)

    assert load_settings(main, environ=environ).gateway.store == expected


def test_invalid_store_from_env_blames_the_environment(tmp_path: Path) -> None:
    """A bad STAPI_GATEWAY_STORE is reported against the variable, not the file."""
    main = write(tmp_path, "g.yaml", MINIMAL)

    [found] = problems(main, {"STAPI_GATEWAY_STORE": "postgres://db"})

    assert found.startswith("environment: STAPI_GATEWAY_STORE: must start with one of memory://")


@pytest.mark.parametrize("store", ["memory://", "redis://h:1/0", "rediss://h", "unix:///tmp/redis.sock"])
def test_store_schemes_accepted(store: str) -> None:
    """Each supported store scheme validates."""
    assert GatewaySettings(store=store).store == store


@pytest.mark.parametrize("store", ["", "redis", "http://h", "memory:"])
def test_store_schemes_rejected(store: str) -> None:
    """Any other store string is rejected."""
    with pytest.raises(ValidationError, match="must start with one of"):
        GatewaySettings(store=store)


# --- unknown keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "main_text", "include_text", "expected"),
    [
        (
            "top",
            MINIMAL + "extras: {}\n",
            None,
            "{main}: extras: unknown key (expected one of: gateway, include, providers, products, clients)",
        ),
        (
            "gateway",
            "gateway: {titel: x}\n" + MINIMAL,
            None,
            # The inherited `ClientLimits` keys come first.
            "{main}: gateway.titel: unknown key (expected one of: max_json_values, max_filter_depth",
        ),
        (
            "provider",
            MINIMAL + "    timeout: 3\n",
            None,
            "{main}: providers.acme.timeout: unknown key (expected one of: id",
        ),
        (
            "include",
            "include: [p/*.yaml]\n",
            "id: b\nurl: http://h\nretry_forever: 2\n",
            "{inc}: retry_forever: unknown key",
        ),
        (
            "products in include",
            "include: [p/*.yaml]\n",
            "id: b\nurl: http://h\nproducts: {x: {members: [b:1, b:2]}}\n",
            "{inc}: products: unknown key (expected one of: id, url",
        ),
        (
            "federated product",
            MINIMAL + "products:\n  fp: {members: [acme:a, acme:b], summary: x}\n",
            None,
            "{main}: products.fp.summary: unknown key (expected one of: id, title, description, keywords, members)",
        ),
    ],
)
def test_unknown_key_is_reported_at_every_level(
    tmp_path: Path, where: str, main_text: str, include_text: str | None, expected: str
) -> None:
    """Unknown keys are errors with their key path, at the top, in `gateway`, in providers and in includes."""
    main = write(tmp_path, "g.yaml", main_text)
    include = write(tmp_path, "p/b.yaml", include_text) if include_text else None

    found = problems(main)

    assert len(found) == 1, where
    assert found[0].startswith(expected.format(main=main, inc=include))


# --- provider ids -----------------------------------------------------------------------

BAD_IDS = ["Acme", "a:b", "a" * 33, "1abc", "-a", "a_b", "a b", ""]


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_bad_id_as_main_file_key(tmp_path: Path, bad_id: str) -> None:
    """A provider key outside ^[a-z][a-z0-9-]{0,31}$ is reported at that key."""
    main = write(tmp_path, "g.yaml", f"providers:\n  '{bad_id}':\n    url: http://h\n")

    [found] = problems(main)

    assert found.startswith(f"{main}: providers.{bad_id}: provider id must match ^[a-z][a-z0-9-]{{0,31}}$")


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_bad_id_in_included_file(tmp_path: Path, bad_id: str) -> None:
    """An included file's `id:` outside the alphabet is reported at `id`."""
    main = write(tmp_path, "g.yaml", "include: [p/*.yaml]\n")
    include = write(tmp_path, "p/x.yaml", f"id: '{bad_id}'\nurl: http://h\n")

    [found] = problems(main)

    assert found.startswith(f"{include}: id: provider id must match")


@pytest.mark.parametrize("good_id", ["a", "a" * 32, "a-1", "orbit-2-eu"])
def test_good_ids_accepted(good_id: str) -> None:
    """Ids at the edges of the alphabet and length limit are valid."""
    assert ProviderSettings(id=good_id, url="http://h").id == good_id


def test_id_inside_main_entry_must_match_key(tmp_path: Path) -> None:
    """An `id:` inside a main-file entry that differs from its key is an error."""
    main = write(tmp_path, "g.yaml", MINIMAL + "    id: other\n")

    assert problems(main) == [f"{main}: providers.acme.id: disagrees with the provider's key 'acme'"]


def test_included_file_needs_an_id(tmp_path: Path) -> None:
    """An included file without `id:` is reported at `id`."""
    main = write(tmp_path, "g.yaml", "include: [p/*.yaml]\n")
    include = write(tmp_path, "p/x.yaml", "url: http://h\n")

    assert problems(main) == [f"{include}: id: required key is missing"]


# --- duplicates and includes ------------------------------------------------------------


def test_duplicate_id_across_main_and_include_names_both_files(tmp_path: Path) -> None:
    """The same id in the main file and an include is one problem naming both files."""
    main = write(tmp_path, "g.yaml", MINIMAL + "include: [p/*.yaml]\n")
    include = write(tmp_path, "p/acme.yaml", "id: acme\nurl: http://h\n")

    assert problems(main) == [
        f"{include}: id: duplicate provider id 'acme', already defined in {main} (providers.acme)"
    ]


def test_duplicate_id_across_two_includes_names_both_files(tmp_path: Path) -> None:
    """The same id in two included files names the first file in the second's problem."""
    main = write(tmp_path, "g.yaml", "include: [p/*.yaml]\n")
    first = write(tmp_path, "p/a.yaml", "id: same\nurl: http://h\n")
    second = write(tmp_path, "p/b.yaml", "id: same\nurl: http://h\n")

    assert problems(main) == [f"{second}: id: duplicate provider id 'same', already defined in {first}"]


def test_include_matching_nothing_is_an_error(tmp_path: Path) -> None:
    """An include pattern with no match is reported with its index and pattern."""
    main = write(tmp_path, "g.yaml", MINIMAL + "include: [p/*.yaml, nowhere/*.yaml]\n")
    write(tmp_path, "p/b.yaml", "id: b\nurl: http://h\n")

    assert problems(main) == [f"{main}: include[1]: pattern 'nowhere/*.yaml' matches no file"]


def test_include_skips_main_file_and_repeats(tmp_path: Path) -> None:
    """A broad pattern never includes the main file, and a file matched twice is read once."""
    main = write(tmp_path, "g.yaml", "include: ['*.yaml', 'b.yaml']\n")
    write(tmp_path, "b.yaml", "id: b\nurl: http://h\n")

    assert list(load_settings(main, environ={}).providers) == ["b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gateway: {}\n", "{main}: providers: no providers configured"),
        ("providers: {}\n", "{main}: providers: no providers configured"),
        ("", "{main}: providers: no providers configured"),
        ("- a\n- b\n", "{main}: the file must hold a mapping at the top level"),
        ("providers: [acme]\n", "{main}: providers: must be a mapping of provider id"),
        (MINIMAL + "include: providers/*.yaml\n", "{main}: include: must be a list of glob patterns"),
        ("gateway: [x]\n" + MINIMAL, "{main}: gateway: must be a mapping"),
    ],
)
def test_structural_problems(tmp_path: Path, text: str, expected: str) -> None:
    """Missing providers and sections of the wrong shape are reported, not crashed on."""
    main = write(tmp_path, "g.yaml", text)

    assert problems(main)[0].startswith(expected.format(main=main))


# --- file-level problems ----------------------------------------------------------------


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    """A main file that does not exist is a problem, not a traceback."""
    missing = tmp_path / "absent.yaml"

    assert problems(missing) == [f"{missing}: file not found"]


def test_yaml_syntax_error_reports_line(tmp_path: Path) -> None:
    """A YAML syntax error names the file and the line."""
    main = write(tmp_path, "g.yaml", "providers:\n  acme:\n    url: [unclosed\n")

    [found] = problems(main)

    assert found.startswith(f"{main}: invalid YAML at line ")


def test_yaml_syntax_error_in_include_reports_that_file(tmp_path: Path) -> None:
    """A syntax error in an included file names that file and its line."""
    main = write(tmp_path, "g.yaml", MINIMAL + "include: [p/*.yaml]\n")
    include = write(tmp_path, "p/b.yaml", "id: b\n  url: http://h\n")

    assert problems(main) == [f"{include}: invalid YAML at line 2, column 6: mapping values are not allowed here"]


def test_duplicate_yaml_key_is_reported(tmp_path: Path) -> None:
    """A key given twice in one mapping is an error instead of the last one silently winning."""
    main = write(tmp_path, "g.yaml", MINIMAL + "  acme:\n    url: http://other\n")

    assert problems(main) == [f"{main}: duplicate key 'acme' at line 5"]


# --- many problems at once ---------------------------------------------------------------


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """One load reports problems from the gateway section, providers and included files together."""
    main = write(
        tmp_path,
        "config/gateway.yaml",
        """
        gateway:
          deadline_s: -1
          store: mysql://x
        include: [providers/*.yaml, missing/*.yaml]
        providers:
          acme:
            url: not a url
            timeout_s: 0
            headers: {Authorization: "Bearer ${ACME_TOKEN}"}
          Bad: {url: http://h}
        """,
    )
    include = write(tmp_path, "config/providers/orbit.yaml", "id: orbit\nurl: http://h\nmax_connections: 0\nx: 1\n")

    found = problems(main)

    assert set(found) == {
        f"{main}: providers.acme.headers.Authorization: environment variable ACME_TOKEN is not set",
        f"{main}: gateway.store: must start with one of memory://, redis://, rediss://, unix://, "
        "redis+sentinel://, rediss+sentinel://, redis+cluster://, rediss+cluster://",
        f"{main}: gateway.deadline_s: Input should be greater than 0",
        f"{main}: providers.acme.url: Input should be a valid URL, relative URL without a base",
        f"{main}: providers.acme.timeout_s: Input should be greater than 0",
        f"{main}: providers.Bad: provider id must match ^[a-z][a-z0-9-]{{0,31}}$: a lowercase letter, then "
        "at most 31 lowercase letters, digits or '-'",
        f"{main}: include[1]: pattern 'missing/*.yaml' matches no file",
        f"{include}: max_connections: Input should be greater than 0",
        f"{include}: x: unknown key (expected one of: id, url, adapter, options, title, timeout_s, status_poll_s, "
        "headers, oauth, max_connections, retries, retry_backoff_s, circuit_failures, circuit_open_s, max_concurrent, "
        "rate_per_s, order_rate_per_s, link_bases, allow_private_links)",
    }
    assert len(found) == len(set(found))


def test_config_error_message_lists_every_problem() -> None:
    """`str(ConfigError)` lists each problem on its own line; it is a startup error, not a GatewayError."""
    error = ConfigError([ConfigProblem("a.yaml", "gateway.x", "bad"), ConfigProblem("b.yaml", "", "file not found")])

    assert str(error) == "invalid configuration (2 problem(s)):\n  a.yaml: gateway.x: bad\n  b.yaml: file not found"
    assert not isinstance(error, GatewayError)


# --- models built in code ---------------------------------------------------------------


def test_settings_build_from_objects_and_mappings() -> None:
    """`Settings.build` takes providers as models or mappings, and gateway settings as keywords."""
    settings = Settings.build(
        [ProviderSettings(id="a", url="http://x"), {"id": "b", "url": "http://y/"}],
        deadline_s=2,
        source="test",
    )

    assert list(settings.providers) == ["a", "b"]
    assert settings.providers["b"].base_url == "http://y"
    assert settings.gateway.deadline_s == 2
    assert settings.source == "test"
    assert settings.summary() == "test: OK, 2 providers (a, b)"


def test_settings_build_rejects_duplicate_ids() -> None:
    """Two providers with one id cannot be built."""
    with pytest.raises(ValueError, match="duplicate provider id 'a'"):
        Settings.build([ProviderSettings(id="a", url="http://x"), ProviderSettings(id="a", url="http://y")])


def test_settings_keys_must_match_ids() -> None:
    """A providers mapping keyed by something other than each provider's id is rejected."""
    with pytest.raises(ValidationError, match="differs from its provider's id"):
        Settings(providers={"x": ProviderSettings(id="a", url="http://h")})


def test_models_are_frozen_and_strict() -> None:
    """Settings cannot be mutated after loading, and unknown fields are rejected in code too."""
    provider = ProviderSettings(id="a", url="http://h")
    with pytest.raises(ValidationError, match="frozen"):
        provider.timeout_s = 1  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        ProviderSettings(id="a", url="http://h", colour="red")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "ftp://h", "URL scheme should be 'http' or 'https'"),
        ("url", "http://h/?key=1", "must not have a query string or fragment"),
        ("timeout_s", 0, "greater than 0"),
        ("timeout_s", float("inf"), "finite number"),
        ("max_connections", 0, "greater than 0"),
        ("adapter", "grpc", r"unknown adapter 'grpc' \(adapters: stapi[,)]"),
        ("headers", {"Bad Name": "x"}, "not a valid HTTP header name"),
        ("headers", {"X-A": "a\r\nX-Injected: 1"}, "contains a line break"),
        ("headers", {"X-A": "1", "x-a": "2"}, "given twice"),
    ],
)
def test_provider_field_validation(field: str, value: object, message: str) -> None:
    """Provider fields reject values that would break or endanger upstream calls."""
    with pytest.raises(ValidationError, match=message):
        ProviderSettings.model_validate({"id": "a", "url": "http://h", field: value})


def test_adapter_options_are_the_adapters_own_model() -> None:
    """`options` is validated by the adapter's model from the registry: defaults when absent, unknown keys located."""
    assert isinstance(ProviderSettings.model_validate({"id": "a", "url": "http://h"}).options, StapiOptions)
    with pytest.raises(ValidationError, match=r"\[colour\]: unknown key \(none are allowed here\)"):
        ProviderSettings.model_validate({"id": "a", "url": "http://h", "options": {"colour": "red"}})


def test_credentials_stay_out_of_repr() -> None:
    """The cursor secret and provider headers never appear in a model's repr."""
    settings = Settings.build(
        [ProviderSettings(id="a", url="http://h", headers={"Authorization": "Bearer tok"})], secret="hush"
    )

    assert "tok" not in repr(settings)
    assert "hush" not in repr(settings)


def test_public_url_is_normalised() -> None:
    """`public_base_url` drops the trailing slash so paths can be appended."""
    assert GatewaySettings(public_url="https://gw.example.com").public_base_url == "https://gw.example.com"
    assert GatewaySettings(public_url="https://gw.example.com/a/").public_base_url == "https://gw.example.com/a"


def test_unset_variable_is_not_reported_twice(tmp_path: Path) -> None:
    """A URL broken only by an unset variable yields the variable problem, not also an invalid-URL one."""
    main = write(tmp_path, "g.yaml", "providers:\n  acme:\n    url: '${ACME_URL}'\n")

    assert problems(main) == [f"{main}: providers.acme.url: environment variable ACME_URL is not set"]


# --- search and catalogue tuning --------------------------------------------------------


def test_search_and_catalogue_keys_have_documented_defaults() -> None:
    """Without them in the file, the search and catalogue keys take their documented defaults."""
    gateway = GatewaySettings()

    assert (gateway.search_ttl_s, gateway.search_refresh_s) == (86400.0, 2.0)
    assert (gateway.search_concurrency, gateway.catalogue_ttl_s) == (8, 60.0)


def test_search_and_catalogue_keys_load_from_file(tmp_path: Path) -> None:
    """The search and catalogue keys are read from `gateway:`, and `catalogue_ttl_s: 0` disables the cache."""
    text = "gateway: {search_ttl_s: 60, search_refresh_s: 0.5, search_concurrency: 2, catalogue_ttl_s: 0}\n"
    gateway = load_settings(write(tmp_path, "g.yaml", text + MINIMAL), environ={}).gateway

    assert (gateway.search_ttl_s, gateway.search_refresh_s, gateway.search_concurrency) == (60.0, 0.5, 2)
    assert gateway.catalogue_ttl_s == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("search_ttl_s", 0, "Input should be greater than 0"),
        ("search_ttl_s", -1, "Input should be greater than 0"),
        ("search_refresh_s", 0, "Input should be greater than 0"),
        ("search_refresh_s", "-0.5", "Input should be greater than 0"),
        ("search_concurrency", 0, "Input should be greater than 0"),
        ("search_concurrency", -3, "Input should be greater than 0"),
        ("search_concurrency", 1.5, "Input should be a valid integer"),
        ("catalogue_ttl_s", -1, "Input should be greater than or equal to 0"),
        ("catalogue_ttl_s", ".inf", "Input should be a finite number"),
    ],
)
def test_search_and_catalogue_keys_reject_bad_values(tmp_path: Path, field: str, value: object, message: str) -> None:
    """Zero or negative durations and concurrency are reported at `gateway.<key>` (the cache TTL may be 0)."""
    main = write(tmp_path, "g.yaml", f"gateway:\n  {field}: {value}\n" + MINIMAL)

    [found] = problems(main)

    assert found.startswith(f"{main}: gateway.{field}: {message}")


# --- federated products -----------------------------------------------------------------

TWO_PROVIDERS = """
include: [p/*.yaml]
providers:
  acme:
    url: http://127.0.0.1:9001
"""


def federated(tmp_path: Path, products: str, orbit: str = "id: orbit\nurl: http://127.0.0.1:9002\n") -> Path:
    """A main file with `acme` inline, `orbit` from an include file, and `products` appended."""
    write(tmp_path, "p/orbit.yaml", orbit)
    return write(tmp_path, "g.yaml", TWO_PROVIDERS + textwrap.dedent(products))


def test_federated_products_load_in_file_order(tmp_path: Path) -> None:
    """Federated products keep file order and every field; members may name providers from include files."""
    main = federated(
        tmp_path,
        """
        products:
          zz-last-id:
            title: Optical, 50 cm or better
            description: Tasking from any optical vendor
            keywords: [optical, vhr]
            members: [acme:optical, "orbit:wv-legion"]
          aa-first-id:
            members:
              - orbit:sar
              - acme:sar:with-colon
        """,
    )

    settings = load_settings(main, environ={})

    assert list(settings.products) == ["zz-last-id", "aa-first-id"]
    first, second = settings.products.values()
    assert (first.id, first.display_title, first.description, first.keywords) == (
        "zz-last-id",
        "Optical, 50 cm or better",
        "Tasking from any optical vendor",
        ["optical", "vhr"],
    )
    assert first.member_ids() == [("acme", "optical"), ("orbit", "wv-legion")]
    assert (second.display_title, second.description, second.keywords) == ("aa-first-id", "", [])
    assert second.member_ids() == [("orbit", "sar"), ("acme", "sar:with-colon")]
    assert (
        settings.summary() == f"{main}: OK, 2 providers (acme, orbit), 2 federated products (zz-last-id, aa-first-id)"
    )


@pytest.mark.parametrize("text", ["", "products:\n", "products: {}\n"])
def test_products_section_is_optional(tmp_path: Path, text: str) -> None:
    """No, a null or an empty `products:` section means no federated products, and the summary omits them."""
    settings = load_settings(federated(tmp_path, text), environ={})

    assert settings.products == {}
    assert "federated" not in settings.summary()


@pytest.mark.parametrize("bad_id", ["a:b", "acme:optical", "Optical", "oPtical", "1abc", "-a", "a_b", "a" * 65, ""])
def test_bad_federated_id_is_reported_at_its_key(tmp_path: Path, bad_id: str) -> None:
    """A federated product key outside ^[a-z][a-z0-9-]{0,63}$ (a colon, uppercase, ...) is reported at that key."""
    main = federated(tmp_path, f"products:\n  '{bad_id}':\n    members: [acme:a, orbit:b]\n")

    assert problems(main) == [
        f"{main}: products.{bad_id}: federated product id must match ^[a-z][a-z0-9-]{{0,63}}$: a lowercase "
        "letter, then at most 63 lowercase letters, digits or '-' (no ':', which only provider products carry)"
    ]


@pytest.mark.parametrize("good_id", ["a", "a" * 64, "optical-high-res", "x-1-2"])
def test_good_federated_ids_accepted(good_id: str) -> None:
    """Federated ids at the edges of the alphabet and length limit are valid."""
    assert FederatedProduct(id=good_id, members=["a:x", "b:y"]).id == good_id


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ("[acme, orbit:b]", ["members[0]: must be 'provider:product', e.g. 'acme:optical-50cm'"]),
        ("['acme:', orbit:b]", ["members[0]: the product part (before/after the first ':') is empty"]),
        ("[acme:a, ':b']", ["members[1]: the provider part (before/after the first ':') is empty"]),
        ("['acme: a', orbit:b]", ["members[0]: must not have spaces around the provider or product part"]),
        ("[acme:a, 42]", ["members[1]: Input should be a valid string"]),
        ("[acme:a]", ["members: needs at least 2 members, got 1: one member is just that product"]),
        ("[]", ["members: needs at least 2 members, got 0: one member is just that product"]),
        ("acme:a", ["members: Input should be a valid list"]),
        ("null", ["members: Input should be a valid list"]),
        (
            "[acme:a, orbit:b, acme:a, orbit:b, acme:a]",
            [
                "members[2]: duplicate member 'acme:a', already members[0]",
                "members[3]: duplicate member 'orbit:b', already members[1]",
                "members[4]: duplicate member 'acme:a', already members[0]",
            ],
        ),
        ("[foo:a, orbit:b]", ["members[0]: unknown provider 'foo' (configured: acme, orbit)"]),
        (
            "[acme:a, Orbit:b, foo:c]",
            [
                "members[1]: unknown provider 'Orbit' (configured: acme, orbit)",
                "members[2]: unknown provider 'foo' (configured: acme, orbit)",
            ],
        ),
    ],
)
def test_bad_members_are_reported_by_index(tmp_path: Path, members: str, expected: list[str]) -> None:
    """Malformed, too few, duplicate and unknown-provider members are each reported at their key path."""
    main = federated(tmp_path, f"products:\n  fp:\n    members: {members}\n")

    assert problems(main) == [f"{main}: products.fp.{line}" for line in expected]


@pytest.mark.parametrize(
    ("products", "expected"),
    [
        ("products: [fp]\n", "products: must be a mapping of federated product id to federated product settings"),
        ("products: {fp: x}\n", "products.fp: must be a mapping of federated product settings"),
        ("products: {fp: null}\n", "products.fp.members: required key is missing"),
        ("products: {fp: {title: T}}\n", "products.fp.members: required key is missing"),
        (
            "products: {fp: {id: other, members: [acme:a, orbit:b]}}\n",
            "products.fp.id: disagrees with the federated product's key 'fp'",
        ),
        ("products: {fp: {members: [acme:a, orbit:b], keywords: x}}\n", "products.fp.keywords: Input should be"),
    ],
)
def test_products_section_shape_problems(tmp_path: Path, products: str, expected: str) -> None:
    """A `products:` section or entry of the wrong shape is reported, not crashed on."""
    main = federated(tmp_path, products)

    [found] = problems(main)

    assert found.startswith(f"{main}: {expected}")


def test_member_of_broken_included_provider_is_not_unknown(tmp_path: Path) -> None:
    """A provider whose include file has another error still counts as configured: one mistake, one problem."""
    main = federated(
        tmp_path, "products: {fp: {members: [acme:a, orbit:b]}}\n", orbit="id: orbit\nurl: http://h\ntimeout_s: 0\n"
    )

    assert problems(main) == [f"{tmp_path / 'p/orbit.yaml'}: timeout_s: Input should be greater than 0"]


def test_unset_variable_in_member_is_reported_once(tmp_path: Path) -> None:
    """A member broken only by an unset variable yields the variable problem, not also an unknown provider."""
    main = federated(tmp_path, "products: {fp: {members: ['${WHO}:a', orbit:b]}}\n")

    assert problems(main) == [f"{main}: products.fp.members[0]: environment variable WHO is not set"]


def test_federated_problems_are_reported_with_the_others(tmp_path: Path) -> None:
    """Federated product problems join the gateway and provider problems of the same load."""
    main = federated(
        tmp_path,
        """
        gateway: {search_concurrency: 0}
        products:
          Bad: {members: [acme:a, orbit:b]}
          fp: {members: [nope:a]}
        """,
        orbit="id: orbit\nurl: ftp://h\n",
    )

    assert set(problems(main)) == {
        f"{main}: gateway.search_concurrency: Input should be greater than 0",
        f"{tmp_path / 'p/orbit.yaml'}: url: URL scheme should be 'http' or 'https'",
        f"{main}: products.Bad: federated product id must match ^[a-z][a-z0-9-]{{0,63}}$: a lowercase letter, then "
        "at most 63 lowercase letters, digits or '-' (no ':', which only provider products carry)",
        f"{main}: products.fp.members[0]: unknown provider 'nope' (configured: acme, orbit)",
        f"{main}: products.fp.members: needs at least 2 members, got 1: one member is just that product",
    }


def test_settings_build_with_federated_products() -> None:
    """`Settings.build` takes federated products as models or mappings, in order, and the summary counts them."""
    settings = Settings.build(
        [{"id": "a", "url": "http://x"}, {"id": "b", "url": "http://y"}],
        products=[FederatedProduct(id="one", members=["a:p", "b:q"]), {"id": "two", "members": ["b:q", "a:p"]}],
        source="test",
    )

    assert list(settings.products) == ["one", "two"]
    assert settings.products["two"].member_ids() == [("b", "q"), ("a", "p")]
    assert settings.summary() == "test: OK, 2 providers (a, b), 2 federated products (one, two)"


@pytest.mark.parametrize(
    ("products", "message"),
    [
        (
            [{"id": "fp", "members": ["a:p", "zz:q"]}],
            "federated product 'fp': unknown provider 'zz' \\(configured: a\\)",
        ),
        ([{"id": "fp", "members": ["a:p", "a:q"]}] * 2, "duplicate federated product id 'fp'"),
        ([{"id": "fp", "members": ["a:p", "a:p"]}], "duplicate member 'a:p', already members\\[0\\]"),
    ],
)
def test_settings_build_rejects_bad_federated_products(products: list[dict[str, object]], message: str) -> None:
    """In code too, members must name known providers, ids must be unique and members distinct."""
    with pytest.raises(ValueError, match=message):
        Settings.build([{"id": "a", "url": "http://x"}], products=products)


def test_settings_products_keys_must_match_ids() -> None:
    """A products mapping keyed by something other than each product's id is rejected."""
    provider = ProviderSettings(id="a", url="http://h")
    with pytest.raises(ValidationError, match="differs from its federated product's id"):
        Settings(providers={"a": provider}, products={"x": FederatedProduct(id="y", members=["a:1", "a:2"])})


def test_federated_product_is_frozen_and_strict() -> None:
    """Federated products cannot be mutated and reject unknown fields."""
    product = FederatedProduct(id="fp", members=["a:1", "b:2"])
    with pytest.raises(ValidationError, match="frozen"):
        product.title = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        FederatedProduct(id="fp", members=["a:1", "b:2"], providers=["a"])  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["User-Agent", "x-request-id", "Traceparent", "tracestate"])
def test_headers_the_gateway_sets_are_refused_in_provider_headers(tmp_path: Path, name: str) -> None:
    """A provider's `headers:` cannot name User-Agent, X-Request-ID or the trace context: the gateway sets them."""
    main = write(tmp_path, "g.yaml", MINIMAL + f"    headers:\n      {name}: something\n")

    [found] = problems(main)

    assert found.startswith(f"{main}: providers.acme.headers")
    assert "is set by the gateway on every upstream call" in found
