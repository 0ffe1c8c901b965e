"""The per-provider Scrubber: no credential survives in what is relayed, and nothing else changes."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.scrub import DETAIL_LIMIT, MIN_SECRET_CHARS, REDACTED, Scrubber, printable

SECRET = "hdr-s3cr3t-value-1234"
TOKEN = "tok-s3cr3t-value-9012"


class Tokens:
    """A secret source whose secrets change, as an OAuth client's tokens do."""

    def __init__(self) -> None:
        self.current: list[str] = []

    def secrets(self) -> list[str]:
        """The tokens in use."""
        return self.current


def scrubbed(scrubber: Scrubber, data: Any) -> Any:
    """What the adapter does with a body: parse the bytes, scrub the result."""
    content = orjson.dumps(data)
    return scrubber.document(content, orjson.loads(content))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


@given(doc=json_values, where=st.integers(0, 1000), escaped=st.booleans())
def test_a_secret_planted_anywhere_in_a_document_is_gone(doc: Any, where: int, escaped: bool) -> None:
    """Wherever a provider puts a credential (value, key, nested, next to escapes), none is left."""
    planted = f'x"\\{SECRET}\n' if escaped else f"see {SECRET} here"
    containers: list[Any] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict | list):
            containers.append(value)
            for item in value.values() if isinstance(value, dict) else value:
                collect(item)

    doc = {"root": doc}
    collect(doc)
    target = containers[where % len(containers)]
    if isinstance(target, dict):
        target[planted if where % 2 else "k"] = planted
    else:
        target.append(planted)
    result = scrubbed(Scrubber([f"Bearer {SECRET}"]), doc)
    assert SECRET not in orjson.dumps(result).decode()
    assert REDACTED in orjson.dumps(result).decode()


@given(doc=json_values)
def test_a_document_without_secrets_is_returned_unchanged(doc: Any) -> None:
    """The fast path: no credential in the bytes, the very same parsed object comes back."""
    content = orjson.dumps(doc)
    parsed = orjson.loads(content)
    assert Scrubber([SECRET]).document(content, parsed) is parsed
    assert parsed == orjson.loads(content)


def test_deeply_nested_documents_are_scrubbed_without_recursion() -> None:
    """1000 levels (orjson allows 1024) are walked without hitting Python's recursion limit."""
    for inner in (SECRET, f"\\{SECRET}"):  # with a backslash, orjson (254 levels) cannot re-encode it
        content = b'{"a":' * 1000 + orjson.dumps(inner) + b"}" * 1000
        result = Scrubber([SECRET]).document(content, orjson.loads(content))
        for _ in range(1000):
            result = result["a"]
        assert result == inner.replace(SECRET, REDACTED)


def test_oauth_tokens_are_scrubbed_as_they_change() -> None:
    """A source's secrets are read on every use: a token minted later is scrubbed too."""
    tokens = Tokens()
    scrubber = Scrubber(sources=[tokens])
    assert scrubber.text(f"Bearer {TOKEN}") == f"Bearer {TOKEN}"
    tokens.current = [TOKEN]
    assert scrubber.text(f"Bearer {TOKEN}") == f"Bearer {REDACTED}"
    assert scrubbed(scrubber, {"echo": TOKEN}) == {"echo": REDACTED}


@pytest.mark.parametrize(
    ("header", "echoed"),
    [
        (f"Bearer {SECRET}", f"Bearer {SECRET}"),
        (f"Bearer {SECRET}", SECRET),
        ("Basic " + base64.b64encode(f"gateway-user:{SECRET}".encode()).decode(), SECRET),
        ("Basic " + base64.b64encode(f"gateway-user:{SECRET}".encode()).decode(), f"gateway-user:{SECRET}"),
    ],
)
def test_header_values_are_scrubbed_whole_and_in_parts(header: str, echoed: str) -> None:
    """A header is scrubbed as sent, its credential word alone, and a Basic value's password."""
    assert Scrubber([header]).text(f"you sent {echoed}!") == f"you sent {REDACTED}!"


def test_client_scrubber_knows_configured_headers_and_url_password_but_not_httpx_defaults() -> None:
    """From a provider's client: configured header values and URL password; not Accept or User-Agent."""
    client = httpx.AsyncClient(base_url=f"http://gw:{TOKEN}@up.test", headers={"X-Api-Key": SECRET})
    scrubber = Scrubber.for_client(client)
    text = f"{SECRET} {TOKEN} {client.headers['user-agent']} gzip, deflate"
    assert scrubber.text(text) == f"{REDACTED} {REDACTED} {client.headers['user-agent']} gzip, deflate"


def test_short_values_are_not_treated_as_secrets() -> None:
    """Values under MIN_SECRET_CHARS would mangle documents; they are left alone."""
    short = "x" * (MIN_SECRET_CHARS - 1)
    assert Scrubber([short]).text(f"a {short} b") == f"a {short} b"


def test_shown_text_is_scrubbed_before_it_is_cut_printable_and_bounded() -> None:
    """A secret straddling the cut is removed whole; control and bidi characters become spaces."""
    text = "e" * (DETAIL_LIMIT - 5) + SECRET + "\n\u202e" + "z" * 1000
    shown = Scrubber([SECRET]).shown(text)
    assert len(shown) == DETAIL_LIMIT
    assert SECRET[:5] not in shown
    assert shown.isprintable()
    assert printable("a\nb\x00c\u202ed") == "a b c d"
