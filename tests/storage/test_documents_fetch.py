"""URL ingestion against a local HTTP server, and the fetcher's refusals.

The server runs on 127.0.0.1, which the fetcher refuses by default; these tests turn
on `FetchPolicy.allow_loopback`, which exists for them alone. Refused addresses
(10.0.0.1, 169.254.169.254, ...) are refused before any connection: no packet leaves
for them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from psycopg_pool import AsyncConnectionPool

from storage.documents import (
    FetchError,
    FetchPolicy,
    FetchRefused,
    Ingestor,
    MiniLMEmbedder,
    PgDocumentStore,
    TooLarge,
    UnsupportedContent,
)
from storage.documents.fetch import fetch

PAGE = b"""<html><head><title>Opening hours</title></head><body><nav>menu</nav>
<main><p>The club house opens at nine on Saturdays.</p></main></body></html>"""
# A server loop that streams "forever" still stops by itself after this long.
STREAM_LIMIT_S = 10.0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, status: int, content_type: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str, **headers: str) -> None:
        self.send_response(302)
        self.send_header("location", location)
        self.send_header("content-length", "0")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def _stream(self, piece: bytes, pause_s: float) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        deadline = time.monotonic() + STREAM_LIMIT_S
        try:
            while time.monotonic() < deadline:
                self.wfile.write(piece)
                self.wfile.flush()
                time.sleep(pause_s)
        except OSError:
            pass  # the client hung up: what the test wants

    def do_GET(self) -> None:
        routes = {
            "/page.html": lambda: self._send(200, "text/html; charset=utf-8", PAGE),
            "/notes.txt": lambda: self._send(200, "text/plain", b"Plain notes about bikes."),
            "/image.png": lambda: self._send(200, "image/png", b"\x89PNG\r\n"),
            "/missing": lambda: self._send(404, "text/plain", b"not found"),
            "/to-page": lambda: self._redirect("/page.html"),
            "/to-private": lambda: self._redirect("http://10.0.0.1/admin"),
            "/to-metadata": lambda: self._redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-file": lambda: self._redirect("file:///etc/passwd"),
            "/loop": lambda: self._redirect("/loop"),
            "/cookie": lambda: self._redirect("/headers", set_cookie="session=abc; Path=/"),
            "/headers": lambda: self._send(200, "text/plain", str(self.headers).encode()),
            "/endless": lambda: self._stream(b"x" * 65536, 0.0),
            "/slow": lambda: self._stream(b"x", 0.2),
            "/big": lambda: self._send(200, "text/plain", b"y" * 5000),
        }
        routes.get(self.path, lambda: self._send(404, "text/plain", b"no route"))()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


LOCAL = FetchPolicy(allow_loopback=True, timeout_s=5.0)


async def test_a_page_is_fetched(server: str) -> None:
    page = await fetch(f"{server}/page.html", LOCAL)
    assert page.body == PAGE
    assert page.content_type.startswith("text/html")


async def test_a_redirect_on_an_allowed_host_is_followed(server: str) -> None:
    page = await fetch(f"{server}/to-page", LOCAL)
    assert page.url == f"{server}/page.html"
    assert page.body == PAGE


async def test_cookies_do_not_travel_across_redirects(server: str) -> None:
    page = await fetch(f"{server}/cookie", LOCAL)
    headers = page.body.decode().lower()
    assert "host: 127.0.0.1" in headers
    assert "cookie" not in headers
    assert "authorization" not in headers


async def test_url_ingestion_stores_the_main_text(
    server: str, pg_pool: AsyncConnectionPool
) -> None:
    store = PgDocumentStore(pg_pool, MiniLMEmbedder())
    scope = f"test:{uuid.uuid4().hex}"
    result = await Ingestor(store, fetch_policy=LOCAL).add(scope, f"{server}/page.html")
    assert result.document.title == "Opening hours"
    assert result.document.source == f"{server}/page.html"
    [passage] = await store.search(scope, "When does the club house open?", k=1)
    assert passage.text == "The club house opens at nine on Saturdays."


@pytest.mark.parametrize(
    ("path", "error", "reason"),
    [
        ("/to-private", FetchRefused, r"10\.0\.0\.1 is a private address"),
        ("/to-metadata", FetchRefused, r"169\.254\.169\.254 is a cloud metadata address"),
        ("/to-file", FetchRefused, "only http and https"),
        ("/loop", FetchError, "more than 5 redirects"),
        ("/image.png", UnsupportedContent, "unsupported content type 'image/png'"),
        ("/missing", FetchError, "HTTP 404"),
        ("/endless", TooLarge, "over the 1000000 byte cap"),
        ("/big", TooLarge, "5000 bytes is over the 4000 byte cap"),
    ],
)
async def test_bad_answers_are_refused(
    server: str, path: str, error: type[Exception], reason: str
) -> None:
    cap = 4000 if path == "/big" else 1_000_000
    policy = FetchPolicy(allow_loopback=True, timeout_s=5.0, max_bytes=cap)
    with pytest.raises(error, match=reason):
        await fetch(f"{server}{path}", policy)


async def test_a_page_that_never_ends_hits_the_time_cap(server: str) -> None:
    with pytest.raises(FetchError, match=r"gave up after 1 s \(time cap\)"):
        await fetch(f"{server}/slow", FetchPolicy(allow_loopback=True, timeout_s=1.0))


async def test_loopback_is_refused_by_default(server: str) -> None:
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1 is a loopback address"):
        await fetch(f"{server}/page.html")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://localhost:6379/", r"localhost \((127\.0\.0\.1|::1)\) is a loopback"),
        ("http://2130706433/", r"127\.0\.0\.1\) is a loopback"),  # 127.0.0.1 as a number
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://10.0.0.1/", r"10\.0\.0\.1 is a private address"),
        ("http://192.168.1.1/", "private"),
        ("http://172.16.0.5/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://100.100.100.200/", "cloud metadata"),
        ("http://169.254.10.10/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "reserved|private|non-public"),
        ("http://100.64.0.1/", "non-public"),
        ("ftp://example.com/file.txt", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("http://user:secret@example.com/", "carries credentials"),
        ("http:///nohost", "no host|not a valid URL"),
    ],
)
async def test_unsafe_urls_are_refused_before_connecting(url: str, reason: str) -> None:
    with pytest.raises(FetchRefused, match=reason):
        await fetch(url)


async def test_allowing_loopback_still_refuses_private_addresses() -> None:
    with pytest.raises(FetchRefused, match="private"):
        await fetch("http://10.0.0.1/", LOCAL)
