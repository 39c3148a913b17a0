"""The address guard: pages are only fetched from public addresses.

A search result, a redirect or a DNS answer can point the fetcher at the user's own network
(a router's admin page, a cloud metadata service at 169.254.169.254, a database on 10.0.0.5).
`GuardedTransport` sits under the httpx client and, for every request (so for every redirect
hop too), resolves the host, refuses the request if any address is not public, and then
connects to the address it vetted rather than resolving the name again (so a DNS answer that
changes between the check and the connection, "DNS rebinding", cannot slip through). The Host
header and TLS server name stay the real host name, so virtual hosts and certificates work.

`allow_loopback=True` lets through 127.0.0.0/8 and ::1 only (tests, users with local
services); private, link-local, multicast, reserved and unspecified addresses stay refused.

Through a proxy (`proxy_for`, from HTTPS_PROXY/NO_PROXY in fetch.py) the host is vetted just
the same, every address it resolves to, before anything is sent; the request then goes to the
proxy by name, because a CONNECT tunnel's TLS must name the host (httpcore's tunnels take the
server name from the URL) and proxies filter by name. The proxy resolves the name again, so a
DNS answer that changes in between is the proxy's to guard, on its own network. A host that
does not resolve here is refused as it is without a proxy. Loopback addresses (allowed only
with `allow_loopback`) are never sent to a proxy: 127.0.0.1 there would be the proxy's own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable

import httpx

# host, port -> the addresses the host name resolves to (as strings)
Resolver = Callable[[str, int], list[str]]
# scheme, host -> the proxy URL to send the request through, or None to connect directly
ProxyFor = Callable[[str, str], str | None]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class AddressRefusedError(Exception):
    """A request to a non-public address was refused; `reason` is short and user-facing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, IPv4 and IPv6, in the system's preference order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why `address` must not be fetched from, or None if it is a public address."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return f"refused address {address} (not an IP address)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if ip.is_loopback:
        return None if allow_loopback else f"refused address {ip} (loopback)"
    if ip.is_unspecified:
        why = "unspecified"
    elif ip.is_link_local:
        why = "link-local"
    elif ip.is_multicast:
        why = "multicast"
    elif isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        why = "shared address space"
    elif ip.is_private:
        why = "private network"
    elif ip.is_reserved:
        why = "reserved"
    elif not ip.is_global:
        why = "not a public address"
    else:
        return None
    return f"refused address {ip} ({why})"


def _is_loopback(address: str) -> bool:
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class GuardedTransport(httpx.AsyncBaseTransport):
    """Vets and pins the address of every request, then hands it to a plain httpx transport.

    One inner transport (connection pool) per host name, so a TLS connection opened for one
    name is never reused for another name that happens to share its address.
    """

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        resolver: Resolver | None = None,
        limits: httpx.Limits | None = None,
        transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None,
        proxy_for: ProxyFor | None = None,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.proxy_for = proxy_for
        self.resolver = resolver or system_resolver
        self._limits = limits or httpx.Limits(max_connections=4, keepalive_expiry=5.0)
        self._factory = transport_factory or self._plain_transport
        self._ssl_context: ssl.SSLContext | None = None
        self._transports: dict[tuple[str, str, int], httpx.AsyncBaseTransport] = {}
        # One per proxy and host too, so each host keeps its own connection limits.
        self._proxies: dict[tuple[str, str, str, int], httpx.AsyncBaseTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise AddressRefusedError(f"refused URL scheme {url.scheme!r}")
        host = url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS want it
        port = url.port or (443 if url.scheme == "https" else 80)
        address = await self.vet(host, port)
        proxy = self.proxy_for(url.scheme, host) if self.proxy_for else None
        if proxy and not _is_loopback(address):
            proxy_key = (proxy, url.scheme, host, port)
            through = self._proxies.get(proxy_key)
            if through is None:
                through = self._proxies[proxy_key] = self._proxy_transport(proxy)
            return await through.handle_async_request(request)  # by name: see the docstring
        # A copy for the connection: the client's request (and so `response.url`) keeps the name.
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=address),
            headers=request.headers,  # includes Host: the real name
            stream=request.stream,
            extensions=extensions,
        )
        key = (url.scheme, host, port)
        transport = self._transports.get(key)
        if transport is None:
            transport = self._transports[key] = self._factory()
        return await transport.handle_async_request(pinned)

    async def vet(self, host: str, port: int) -> str:
        """The address to connect to for `host`; raises `AddressRefusedError` if any of the
        addresses it resolves to is not allowed (a name with one private address is refused)."""
        try:
            addresses = [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                addresses = await loop.run_in_executor(None, self.resolver, host, port)
            except (OSError, UnicodeError) as error:
                raise httpx.ConnectError(f"cannot resolve {host} ({error})") from error
        if not addresses:
            raise httpx.ConnectError(f"cannot resolve {host}")
        for address in addresses:
            if reason := refusal(address, allow_loopback=self.allow_loopback):
                raise AddressRefusedError(reason if address == host else f"{reason} for {host}")
        return addresses[0]

    def _plain_transport(self) -> httpx.AsyncBaseTransport:
        # One TLS context for every host: loading the CA certificates costs ~25 ms each time.
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return httpx.AsyncHTTPTransport(limits=self._limits, verify=self._ssl_context)

    def _proxy_transport(self, proxy: str) -> httpx.AsyncBaseTransport:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return httpx.AsyncHTTPTransport(limits=self._limits, verify=self._ssl_context, proxy=proxy)

    async def aclose(self) -> None:
        transports = [*self._transports.values(), *self._proxies.values()]
        self._transports, self._proxies = {}, {}
        for transport in transports:
            await transport.aclose()
