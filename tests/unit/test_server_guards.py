"""Slow clients, foreign Hosts and cross-site POSTs (issue 15, defect 6).

In-process (TestClient, or the ASGI app called with a hand-made ``receive``) over a tiny model
trained in the fixture: allowed hosts, cross-site refusals, the 408 of a body that stops coming,
``serve``'s options and its warning on a non-loopback address. The ``slow`` tests start a real
``stylesearch serve`` on 127.0.0.1 and probe it with raw sockets, each read bounded by a
timeout: half-sent headers, headers or a body dripped a byte at a time, a silent connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")  # python-multipart

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from stylesearch.cli import cli  # noqa: E402
from stylesearch.server import SearchService, ServerLimits, create_app  # noqa: E402
from stylesearch.server.guards import (  # noqa: E402
    browse_host,
    default_allowed_hosts,
    exposure_warning,
    host_name,
    is_loopback,
)
from stylesearch.server.service import LOOPBACK_HOSTS  # noqa: E402

LOCAL = "http://127.0.0.1:8000"


def error_of(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


# --------------------------------------------------------------------------- hosts


def test_host_names_and_defaults(monkeypatch):
    assert host_name("LocalHost:8000") == "localhost"
    assert host_name("[::1]:8000") == host_name("::1") == "[::1]"
    assert host_name("example.com.") == host_name("example.com") == "example.com"
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "", "192.168.1.5", "example.com"))
    monkeypatch.setattr(socket, "gethostname", lambda: "MyBox")
    assert default_allowed_hosts("127.0.0.1") == LOOPBACK_HOSTS == ServerLimits().allowed_hosts
    assert default_allowed_hosts("0.0.0.0") == (*LOOPBACK_HOSTS, "mybox")
    assert default_allowed_hosts("::") == (*LOOPBACK_HOSTS, "mybox")
    assert default_allowed_hosts("192.168.1.5") == (*LOOPBACK_HOSTS, "192.168.1.5")
    assert browse_host("0.0.0.0") == "127.0.0.1" and browse_host("::") == "[::1]"
    assert exposure_warning("127.0.0.1", 8000, LOOPBACK_HOSTS) is None
    assert exposure_warning("localhost", 8000, LOOPBACK_HOSTS) is None
    for bind in ("0.0.0.0", "::", "192.168.1.5"):
        warning = exposure_warning(bind, 8000, LOOPBACK_HOSTS)
        assert warning and "WITHOUT authentication" in warning and "reverse proxy" in warning


def test_a_foreign_host_is_refused(client):
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends
    ``Host: evil.example``; it gets a 400 that says how to allow a name."""
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST"):
        assert client.get("/api/health", headers={"host": host}).status_code == 200, host
    for path in ("/api/health", "/", "/api/items/x", "/static/app.js", "/docs"):
        body = error_of(client.get(path, headers={"host": "evil.example:8000"}), 400)
        assert body["error"] == "bad_host" and "evil.example" in body["detail"]
        assert "--allowed-host" in body["detail"]


def test_allowed_hosts_are_the_limits(service):
    limits = ServerLimits(allowed_hosts=("search.example.com",))
    app = create_app(SearchService(service.searcher, limits))
    client = TestClient(app, base_url="https://search.example.com")
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/health", headers={"host": "127.0.0.1"}).status_code == 400
    anywhere = TestClient(
        create_app(SearchService(service.searcher, ServerLimits(allowed_hosts=("*",))))
    )
    assert anywhere.get("/api/health", headers={"host": "whatever.example"}).status_code == 200


# --------------------------------------------------------------------------- cross-site POSTs


def test_cross_site_posts_are_refused_before_any_search(client, service, item_id, png, monkeypatch):
    def never(query):
        raise AssertionError("a cross-site request reached the search")

    monkeypatch.setattr(service, "search", never)
    files = {"image": ("q.png", png, "image/png")}
    form = {"item_id": item_id, "add": "red"}
    for headers in (
        {"origin": "https://evil.example"},
        {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "null"},  # a sandboxed frame or a file:// page
        {"origin": "http://localhost:3000"},  # another server's page on this machine
        {"origin": "http://127.0.0.1:8001", "sec-fetch-site": "same-site"},
    ):
        for kwargs in ({"files": files}, {"data": form}):  # multipart and a plain form
            body = error_of(client.post("/api/search", headers=headers, **kwargs), 403)
            assert body["error"] == "cross_site" and "cross-site request refused" in body["detail"]
        response = client.post("/api/search", headers=headers, json={"item_id": item_id})
        assert error_of(response, 403)["error"] == "cross_site"


def test_the_page_and_scripts_still_search(client, item_id, png):
    same_origin = {"origin": LOCAL, "sec-fetch-site": "same-origin"}
    files = {"image": ("q.png", png, "image/png")}
    assert client.post("/api/search", headers=same_origin, files=files).status_code == 200
    response = client.post(
        "/api/search", headers=same_origin, json={"item_id": item_id, "add": ["red"]}
    )
    assert response.status_code == 200, response.text
    assert client.post("/api/search", files=files).status_code == 200  # curl: no Origin
    # reads are not refused (a page elsewhere cannot read the answers anyway)
    cross = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    assert client.get("/api/health", headers=cross).status_code == 200


def test_behind_a_proxy_the_public_origin_is_allowed(service, item_id):
    """nginx answers https://search.example.com and passes Host: 127.0.0.1:8000 on."""
    hosts = (*LOOPBACK_HOSTS, "search.example.com")
    client = TestClient(
        create_app(SearchService(service.searcher, ServerLimits(allowed_hosts=hosts))),
        base_url=LOCAL,
    )
    public = {"origin": "https://search.example.com", "sec-fetch-site": "same-origin"}
    assert client.post("/api/search", headers=public, json={"item_id": item_id}).status_code == 200
    other = {"origin": "https://evil.example"}
    assert client.post("/api/search", headers=other, json={"item_id": item_id}).status_code == 403


# --------------------------------------------------------------------------- body deadline


def scope_for(content_type: str, length: int, host: str = "127.0.0.1:8000") -> dict[str, Any]:
    headers = [
        (b"host", host.encode()),
        (b"content-type", content_type.encode()),
        (b"content-length", str(length).encode()),
    ]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/search", "raw_path": b"/api/search",
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip


def call(app, scope: dict[str, Any], chunks: list[bytes], then: str) -> tuple[int, dict, dict]:
    """Run ``app`` on one request whose body is ``chunks`` and then either never ends
    (``then="hang"``) or is cut by the client (``"disconnect"``): (status, headers, body)."""
    sent: list[dict[str, Any]] = []
    queue = list(chunks)

    async def receive() -> dict[str, Any]:
        if queue:
            return {"type": "http.request", "body": queue.pop(0), "more_body": True}
        if then == "disconnect":
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=20))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body)


@pytest.mark.parametrize(
    "content_type,first",
    [
        ("application/json", b'{"item_id": "'),
        ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="k"'),
    ],
)
def test_a_body_that_stops_coming_is_a_408(service, content_type, first):
    app = create_app(SearchService(service.searcher, ServerLimits(body_timeout=0.3)))
    t0 = time.monotonic()
    status, headers, body = call(app, scope_for(content_type, 1000), [first], then="hang")
    took = time.monotonic() - t0
    assert status == 408 and body["error"] == "timeout", body
    assert "within 0.3 s" in body["detail"] and headers["connection"] == "close"
    assert 0.25 <= took < 5


def test_a_client_gone_mid_body_is_not_a_500(service, caplog):
    app = create_app(service)
    scope = scope_for("application/json", 1000)
    with caplog.at_level("INFO", logger="stylesearch.server"):
        status, _, body = call(app, scope, [b'{"item_id": "'], then="disconnect")
    assert status == 400 and body["error"] == "client_disconnected"
    assert "internal error" not in caplog.text


# --------------------------------------------------------------------------- serve


def test_serve_options_and_the_network_warning(index_dir, monkeypatch):
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    runner = CliRunner()
    threads = torch.get_num_threads()
    try:
        quiet = runner.invoke(cli, ["serve", "--index", str(index_dir)])
        args = [
            "serve", "--index", str(index_dir), "--host", "0.0.0.0", "--allowed-host",
            "search.example.com", "--allowed-host", "10.0.0.7:8000", "--header-timeout", "4",
            "--body-timeout", "12.5",
        ]  # fmt: skip
        loud = runner.invoke(cli, args)
    finally:
        torch.set_num_threads(threads)
    assert quiet.exit_code == 0, quiet.output
    assert "WARNING" not in quiet.stderr
    assert loud.exit_code == 0, loud.output
    assert "WARNING: listening on 0.0.0.0:8000" in loud.stderr
    assert "WITHOUT authentication" in loud.stderr and "--allowed-host" in loud.stderr
    assert "open http://127.0.0.1:8000/" in loud.stderr
    limits = seen["app"].state.service.limits
    assert limits.header_timeout == 4.0 and limits.body_timeout == 12.5
    assert {"127.0.0.1", "localhost", "search.example.com", "10.0.0.7:8000"} <= set(
        limits.allowed_hosts
    )
    assert issubclass(seen["http"], H11Protocol)
    assert seen["h11_max_incomplete_event_size"] == limits.max_header_bytes
    client = TestClient(seen["app"], base_url="http://10.0.0.7:8000")
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/health", headers={"host": "evil.example"}).status_code == 400


# --------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(index_dir, tmp_path_factory):
    """``stylesearch serve`` on 127.0.0.1 with a 1 s header and a 2 s body timeout."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [
        sys.executable, "-m", "stylesearch", "serve", "--index", str(index_dir), "--port",
        str(port), "--header-timeout", "1", "--body-timeout", "2", "--log-level", "warning",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve exited: {log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("serve did not listen within 90 s")
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def probe(port: int, chunks: list[bytes], every: float, limit: float = 15) -> tuple[float, bytes]:
    """Send ``chunks`` ``every`` seconds apart, then read until the server closes: (seconds from
    connecting to the close, what came back). Every read waits at most ``every`` (or the rest of
    ``limit``); a server that holds on past ``limit`` seconds fails the test."""
    t0 = time.monotonic()
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        pending = list(chunks)
        while time.monotonic() - t0 < limit:
            if pending:
                try:
                    s.sendall(pending.pop(0))
                except OSError:  # closed by the server mid-drip
                    pending = []
            s.settimeout(every if pending else max(0.05, limit - (time.monotonic() - t0)))
            try:
                data = s.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            got += data
        else:
            pytest.fail(f"still open after {limit} s; got {got[:200]!r}")
    return time.monotonic() - t0, got


@pytest.mark.slow
def test_slow_clients_are_cut_off(server):
    port = server
    post = b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    json_head = post + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    probes = {
        "half-sent headers": ([post], 0.2),
        "headers at 5 bytes/s": ([post[i : i + 1] for i in range(len(post))], 0.2),
        "silent connection": ([], 0.2),
        "body at 5 bytes/s": ([json_head, *[b" "] * 60], 0.2),
        "body to a GET, unread": (
            [
                b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n",
                *[b"x"] * 60,
            ],
            0.2,
        ),  # fmt: skip
    }
    with ThreadPoolExecutor(len(probes)) as pool:
        futures = {name: pool.submit(probe, port, *args) for name, args in probes.items()}
        results = {name: f.result() for name, f in futures.items()}
    took, got = results["half-sent headers"]
    assert got.startswith(b"HTTP/1.1 408 ") and 0.9 <= took < 4, (took, got)
    took, got = results["headers at 5 bytes/s"]
    assert got.startswith(b"HTTP/1.1 408 ") and 0.9 <= took < 4, (took, got)
    took, got = results["silent connection"]
    assert got == b"" and 0.9 <= took < 4, took
    took, got = results["body at 5 bytes/s"]
    assert got.startswith(b"HTTP/1.1 408 ") and b'"error":"timeout"' in got, got
    assert 1.9 <= took < 5, took
    took, got = results["body to a GET, unread"]
    assert got.startswith(b"HTTP/1.1 200 ") and 2.9 <= took < 6, (took, got)  # 2 s + grace
    # the server is still there for a well-behaved client
    request = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    took, got = probe(port, [request], 0.2)
    assert got.startswith(b"HTTP/1.1 200 ") and took < 4
    took, got = probe(port, [request.replace(b"localhost", b"evil.example")], 0.2)
    assert got.startswith(b"HTTP/1.1 400 ") and b"bad_host" in got
