"""URL keys: one key per page however a search engine spells its address, and one per site."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def normalise_url(url: str) -> str:
    """Key for deduplication and the page cache: scheme and host lower-cased, default port,
    fragment and trailing slash dropped (`HTTPS://Ex.org:443/a/#x` and `https://ex.org/a` are
    one page)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    if parts.port and (scheme, parts.port) not in {("http", 80), ("https", 443)}:
        host = f"{host}:{parts.port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/") or "/", parts.query, ""))


def site_of(url: str) -> str:
    """The site a URL belongs to, for the per-domain cap: the registered domain
    (`news.bbc.co.uk` → `bbc.co.uk`), or the bare host for IP addresses and unknown suffixes."""
    host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    if not host or ":" in host or host.replace(".", "").isdigit():
        return host
    try:
        from courlan import extract_domain  # trafilatura's URL library; knows public suffixes

        domain = extract_domain(f"http://{host}/")
    except Exception:  # an unknown suffix or a malformed host: fall back to the host
        domain = None
    return (domain or host.removeprefix("www.")).lower()
