"""Fetching a URL for ingestion: a security boundary, not a convenience.

A community admin hands the bot a URL; without care that URL reaches the host's own
services (`http://127.0.0.1:6379`), the private network, or the cloud metadata endpoint
that gives out credentials. So:

- only http and https, no credentials in the URL, none of ours sent (no cookies kept
  across hops, no .netrc, no proxy settings from the environment);
- the host name is resolved here and every address it resolves to must be public
  (not loopback, private, link-local, multicast, reserved or a metadata address); the
  connection then goes to the checked address, so a second DNS answer cannot swap in
  another one (DNS rebinding);
- redirects are followed by hand, each new location checked the same way;
- the body is capped in size and the whole fetch in time; the content type must be one
  the parsers read.

`FetchPolicy.allow_loopback` exists for tests that serve pages from 127.0.0.1; it is
off by default and nothing in the app turns it on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from storage.documents.errors import FetchError, FetchRefused, TooLarge, UnsupportedContent
from storage.documents.parsing import CONTENT_TYPES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services that are not caught by the address classes below (168.63.129.16 is
# Azure's, a public address) or that deserve their own reason in the message.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, ...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server (a public address)
    )
)


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = 20 * 1024 * 1024
    timeout_s: float = 30.0
    max_redirects: int = 5
    allow_loopback: bool = False  # tests only: lets a test fetch from its own local server
    user_agent: str = "commons-bot document fetcher"


@dataclass(frozen=True)
class FetchedPage:
    url: str  # after redirects
    content_type: str
    body: bytes


def refusal_reason(address: IPAddress, policy: FetchPolicy) -> str | None:
    """Why the fetcher will not connect to `address`, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if policy.allow_loopback else "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_unspecified or address.is_reserved or not address.is_global:
        return "a reserved, non-public address"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(host, f"cannot resolve host {host!r} ({exc})") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        # Drop an IPv6 zone ("fe80::1%eth0"); the address class decides.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(host, f"host {host!r} has no address")
    return addresses


async def check_url(url: str, policy: FetchPolicy) -> tuple[httpx.URL, IPAddress]:
    """Validate `url` and its host; return it with the address to connect to."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchRefused(url, f"not a valid URL ({exc})") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchRefused(url, f"only http and https URLs are fetched, not {parsed.scheme!r}")
    if parsed.userinfo:
        raise FetchRefused(url, "the URL carries credentials; give one without user:password@")
    if not parsed.host:
        raise FetchRefused(url, "the URL has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = await resolve(parsed.host, port)
    except FetchError as exc:
        raise FetchError(url, exc.reason) from exc
    for address in addresses:
        # All, not just the first: a host that also resolves to a private address could
        # be steered there by whichever answer the connection would take.
        reason = refusal_reason(address, policy)
        if reason is not None:
            shown = parsed.host if str(address) == parsed.host else f"{parsed.host} ({address})"
            raise FetchRefused(url, f"refused: {shown} is {reason}")
    return parsed, addresses[0]


async def fetch(url: str, policy: FetchPolicy | None = None) -> FetchedPage:
    """GET `url` under `policy`; raise `FetchRefused`/`FetchError`/`TooLarge` when it fails."""
    policy = policy or FetchPolicy()
    try:
        async with asyncio.timeout(policy.timeout_s):
            return await _fetch(url, policy)
    except TimeoutError:
        raise FetchError(url, f"gave up after {policy.timeout_s:g} s (time cap)") from None


async def _fetch(original: str, policy: FetchPolicy) -> FetchedPage:
    url = original
    for _ in range(policy.max_redirects + 1):
        parsed, address = await check_url(url, policy)
        async with _client(policy) as client:
            request = _pinned_request(client, parsed, address, policy)
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise FetchError(original, f"cannot fetch {url} ({exc})") from exc
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    if not location:
                        raise FetchError(original, f"{url} redirects without a location")
                    url = str(parsed.join(location))
                    continue
                if response.status_code != 200:
                    raise FetchError(
                        original, f"{url} answered HTTP {response.status_code}, not 200"
                    )
                content_type = response.headers.get("content-type", "")
                if content_type.split(";")[0].strip().lower() not in CONTENT_TYPES:
                    raise UnsupportedContent(
                        original,
                        f"unsupported content type {content_type or '(none)'!r}; "
                        "HTML, text, Markdown and PDF are read",
                    )
                body = await _read_capped(response, original, policy)
            finally:
                await response.aclose()
        return FetchedPage(url, content_type, body)
    raise FetchError(original, f"more than {policy.max_redirects} redirects")


def _client(policy: FetchPolicy) -> httpx.AsyncClient:
    # trust_env=False: no proxy variables, no .netrc credentials. A new client per hop:
    # no cookie from one host travels to the next, no TLS connection is reused for
    # another host name.
    return httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(policy.timeout_s),
        headers={"user-agent": policy.user_agent, "accept": ", ".join(CONTENT_TYPES)},
    )


def _pinned_request(
    client: httpx.AsyncClient, parsed: httpx.URL, address: IPAddress, policy: FetchPolicy
) -> httpx.Request:
    """A request that connects to `address`, which was checked, while naming the host."""
    host_header = parsed.netloc.decode("ascii")
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return client.build_request(
        "GET",
        parsed.copy_with(host=str(address)),
        headers={"host": host_header},
        extensions=extensions,
    )


async def _read_capped(response: httpx.Response, source: str, policy: FetchPolicy) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise TooLarge(source, f"{int(declared)} bytes is over the {policy.max_bytes} byte cap")
    body = bytearray()
    try:
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > policy.max_bytes:
                raise TooLarge(source, f"the page is over the {policy.max_bytes} byte cap")
    except httpx.HTTPError as exc:
        raise FetchError(source, f"the download broke off ({exc})") from exc
    return bytes(body)
