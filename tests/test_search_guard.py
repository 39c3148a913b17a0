"""The address guard: only public addresses are fetched, at every redirect hop.

Private targets are refused before any connection is made, so these tests never touch the
network beyond 127.0.0.1; host names are resolved by a stub resolver.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.search.fetch import Fetcher, FetchSettings, Page
from backends.search.guard import GuardedTransport, refusal
from backends.search.loopback import LoopbackSite, Route
from backends.search.types import SkippedSource

HTML = {"Content-Type": "text/html"}
GOOD = (
    b"<html><head><title>Public page</title></head><body><article><p>The Moon pulls the "
    b"oceans toward it, so most coasts see two high tides a day.</p></article></body></html>"
)
NAMES = {
    "local.test": ["127.0.0.1"],
    "mixed.test": ["93.184.216.34", "10.0.0.1"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "internal.test": ["192.168.1.1"],
}


def stub_resolver(host: str, port: int) -> list[str]:
    if host not in NAMES:
        raise OSError(f"unknown host {host}")
    return NAMES[host]


def read(*urls: str, **settings: Any) -> list[Page | SkippedSource]:
    async def go() -> list[Page | SkippedSource]:
        options = {"respect_robots": False, **settings}
        fetcher = Fetcher(FetchSettings(**options), resolver=stub_resolver)
        try:
            return await fetcher.read_many(urls)
        finally:
            await fetcher.aclose()

    return asyncio.run(go())


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    routes = {
        "/good": Route(200, HTML, GOOD),
        "/to-metadata": Route(302, {"Location": "http://169.254.169.254/latest/meta-data/"}),
        "/to-private": Route(301, {"Location": "http://10.0.0.1/admin"}),
        "/to-internal-name": Route(307, {"Location": "http://internal.test/"}),
        "/to-file": Route(302, {"Location": "file:///etc/passwd"}),
        "/to-good": Route(302, {"Location": "/good"}),
    }
    with LoopbackSite(routes) as server:
        yield server


@pytest.mark.parametrize(
    ("address", "allow_loopback", "expected"),
    [
        ("93.184.216.34", False, None),
        ("2606:2800:220:1:248:1893:25c8:1946", False, None),
        ("127.0.0.1", False, "refused address 127.0.0.1 (loopback)"),
        ("127.0.0.1", True, None),
        ("::1", True, None),
        ("::ffff:127.0.0.1", True, None),
        ("10.0.0.1", True, "refused address 10.0.0.1 (private network)"),
        ("192.168.1.1", True, "refused address 192.168.1.1 (private network)"),
        ("172.16.0.1", False, "refused address 172.16.0.1 (private network)"),
        ("::ffff:10.0.0.1", False, "refused address 10.0.0.1 (private network)"),
        ("fc00::1", False, "refused address fc00::1 (private network)"),
        ("169.254.169.254", True, "refused address 169.254.169.254 (link-local)"),
        ("fe80::1", False, "refused address fe80::1 (link-local)"),
        ("224.0.0.1", False, "refused address 224.0.0.1 (multicast)"),
        ("ff02::1", False, "refused address ff02::1 (multicast)"),
        ("0.0.0.0", True, "refused address 0.0.0.0 (unspecified)"),
        ("100.64.0.1", False, "refused address 100.64.0.1 (shared address space)"),
        ("240.0.0.1", False, "refused address 240.0.0.1 (private network)"),
        ("192.0.2.1", False, "refused address 192.0.2.1 (private network)"),
    ],
)
def test_only_public_addresses_pass(
    address: str, allow_loopback: bool, expected: str | None
) -> None:
    assert refusal(address, allow_loopback=allow_loopback) == expected


def test_a_redirect_to_a_private_address_is_refused_even_with_loopback_allowed(
    site: LoopbackSite,
) -> None:
    metadata, private, internal, good = read(
        site.url("/to-metadata"),
        site.url("/to-private"),
        site.url("/to-internal-name"),
        site.url("/to-good"),
        allow_loopback=True,
    )

    assert metadata == SkippedSource(
        site.url("/to-metadata"), "refused address 169.254.169.254 (link-local)", "address"
    )
    assert private == SkippedSource(
        site.url("/to-private"), "refused address 10.0.0.1 (private network)", "address"
    )
    assert internal == SkippedSource(
        site.url("/to-internal-name"),
        "refused address 192.168.1.1 (private network) for internal.test",
        "address",
    )
    assert isinstance(good, Page) and good.url == site.url("/good")  # a loopback hop is fine


def test_private_and_loopback_urls_are_refused_directly(site: LoopbackSite) -> None:
    loopback, private, unspecified = read(
        site.url("/good"), "http://10.0.0.1/", f"http://0.0.0.0:{site.port}/good"
    )
    (still_unspecified,) = read(f"http://0.0.0.0:{site.port}/good", allow_loopback=True)

    assert loopback == SkippedSource(
        site.url("/good"), "refused address 127.0.0.1 (loopback)", "address"
    )
    assert private == SkippedSource(
        "http://10.0.0.1/", "refused address 10.0.0.1 (private network)", "address"
    )
    assert (
        unspecified.reason
        == still_unspecified.reason
        == (  # type: ignore[union-attr]
            "refused address 0.0.0.0 (unspecified)"
        )
    )
    assert site.requests == []  # nothing reached the server


def test_a_name_with_any_private_address_is_refused(site: LoopbackSite) -> None:
    mixed, mapped, unknown = read(
        "http://mixed.test/", "https://mapped.test/", "http://nowhere.test/", allow_loopback=True
    )

    assert mixed == SkippedSource(
        "http://mixed.test/", "refused address 10.0.0.1 (private network) for mixed.test", "address"
    )
    assert mapped == SkippedSource(
        "https://mapped.test/",
        "refused address 10.0.0.1 (private network) for mapped.test",
        "address",
    )
    assert isinstance(unknown, SkippedSource) and unknown.category == "network"
    assert "cannot resolve nowhere.test" in unknown.reason


def test_the_vetted_address_is_connected_to_and_the_host_name_kept(site: LoopbackSite) -> None:
    (page,) = read(site.url("/good", host="local.test"), allow_loopback=True)

    assert isinstance(page, Page) and page.title == "Public page"
    assert page.url == site.url("/good", host="local.test")  # not rewritten to the address
    assert [r.host for r in site.requests] == [f"local.test:{site.port}"]


def test_only_http_and_https_are_followed(site: LoopbackSite) -> None:
    (to_file,) = read(site.url("/to-file"), allow_loopback=True)

    assert to_file == SkippedSource(site.url("/to-file"), "refused URL scheme 'file'", "address")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_to_a_pinned_address_still_checks_the_certificate_of_the_name(
    tmp_path: Path,
) -> None:
    """TLS goes to the vetted address but with the real name as SNI and for the certificate
    check: a certificate for the name passes, the same server under another name fails."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=secure.test"),
            *("-addext", "subjectAltName=DNS:secure.test"),
        ],
        check=True,
        capture_output=True,
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))

    with LoopbackSite({"/good": Route(200, HTML, GOOD)}, ssl_context=server_context) as site:

        async def get(name: str) -> int | str:
            transport = GuardedTransport(
                allow_loopback=True,
                resolver=lambda host, port: ["127.0.0.1"],
                transport_factory=lambda: httpx.AsyncHTTPTransport(verify=client_context),
            )
            async with httpx.AsyncClient(transport=transport) as client:
                try:
                    response = await client.get(f"https://{name}:{site.port}/good")
                except httpx.ConnectError as error:
                    return str(error)
                return response.status_code

        assert asyncio.run(get("secure.test")) == 200
        assert "certificate" in str(asyncio.run(get("other.test"))).lower()
        assert [r.host for r in site.requests] == [f"secure.test:{site.port}"]
