"""Who may talk to the server, and how slowly: ASGI middlewares around the app (docs/server.md).

:class:`HostGuard`
    Answers only requests whose ``Host`` header names one of the allowed hosts (400 ``bad_host``
    otherwise), so a DNS-rebinding page cannot reach a server bound to this machine. A POST (any
    method but GET, HEAD and OPTIONS) that a browser says comes from another site (its
    ``Sec-Fetch-Site``) or whose ``Origin`` is neither this server nor an allowed host is refused
    with 403 ``cross_site``: a page elsewhere can send a form or multipart POST without asking
    (no CORS preflight), and would otherwise reach the API. An ``Origin`` is this server when its
    host and port are the request's ``Host``, or when it names an allowed host that is not a
    loopback name (a page on another port of this machine is another origin). Requests with
    neither header (curl, scripts) are not browsers' cross-site requests and pass.
:class:`BodyDeadline`
    The request body must have arrived within ``timeout`` seconds of the request's headers; a
    read past that raises :class:`BodyTimeout`, answered here with 408 ``timeout`` and the
    connection closed. The headers themselves are bounded by the HTTP protocol
    (:mod:`stylesearch.server.protocol`), which also closes a connection whose body is still
    arriving when nothing reads it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stylesearch.server.schemas import error_body
from stylesearch.server.service import LOOPBACK_HOSTS

__all__ = [
    "BodyDeadline",
    "BodyTimeout",
    "HostGuard",
    "browse_host",
    "default_allowed_hosts",
    "exposure_warning",
    "host_name",
    "is_loopback",
]

#: methods that only read; browsers send them cross-site freely and they change nothing here
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: in ``allowed_hosts``: answer any Host (only behind a proxy that checks it)
ANY_HOST = "*"


def host_name(value: str) -> str:
    """The host name of a ``Host`` header or an allowed-host entry, without its port, lowercased.

    ``"LocalHost:8000"`` -> ``"localhost"``, ``"[::1]:8000"`` and ``"::1"`` -> ``"[::1]"``,
    ``"example.com."`` -> ``"example.com"``.
    """
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    if value.count(":") > 1:  # a bare IPv6 address
        return f"[{value}]"
    return value.partition(":")[0].rstrip(".")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a ``--host`` address or name) is this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def browse_host(bind: str) -> str:
    """The host to open in a browser for a server bound to ``bind`` (``0.0.0.0`` -> 127.0.0.1)."""
    name = host_name(bind)
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(name, name)


def default_allowed_hosts(bind: str) -> tuple[str, ...]:
    """The Host names a server bound to ``bind`` answers by default: the loopback names, plus the
    bound address itself, plus this machine's name when bound to every address (``0.0.0.0``,
    ``::``). Anything else (a LAN address, a proxy's name) is added with ``--allowed-host``."""
    hosts = list(LOOPBACK_HOSTS)
    name = host_name(bind)
    unspecified = name in ("", "0.0.0.0", "[::]")
    if unspecified:
        hosts.append(socket.gethostname().lower())
    elif name not in hosts:
        hosts.append(name)
    return tuple(dict.fromkeys(h for h in hosts if h))


def exposure_warning(bind: str, port: int, allowed_hosts: Iterable[str]) -> str | None:
    """The warning ``serve`` prints when bound to an address other machines can reach."""
    if is_loopback(bind):
        return None
    names = ", ".join(allowed_hosts)
    return (
        f"WARNING: listening on {bind}:{port}: the API is reachable from the network, WITHOUT "
        "authentication; anyone who can reach this port can search and upload images. Keep it "
        "on 127.0.0.1 behind a reverse proxy that authenticates (docs/server.md, 'Behind a "
        f"reverse proxy'). Requests are answered for the Host names {names} only; add others "
        "with --allowed-host."
    )


class BodyTimeout(Exception):
    """The request body did not arrive in time (HTTP 408)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"the request body did not arrive within {timeout:g} s")


def _error(status: int, code: str, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse(error_body(code, detail), status_code=status, headers=headers)


class HostGuard:
    """ASGI middleware: the allowed ``Host`` names (400) and no cross-site POSTs (403).

    Args:
        app: the wrapped ASGI app.
        allowed_hosts: host names (a port, if given, is ignored); ``"*"`` answers any Host, and
            then an ``Origin`` must name the request's own Host.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        hosts = list(allowed_hosts)
        self.any_host = ANY_HOST in hosts
        self.allowed = frozenset(host_name(h) for h in hosts if h != ANY_HOST)
        self.listed = ", ".join(sorted(self.allowed)) or "none"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.any_host and host_name(host) not in self.allowed:
            what = f"Host {host[:100]!r}" if host else "a request without a Host header"
            response = _error(
                400,
                "bad_host",
                f"this server does not answer {what} (allowed: {self.listed}); start it with "
                "--allowed-host NAME to add a name",
            )
        elif scope["method"] not in SAFE_METHODS and (why := self._cross_site(headers, host)):
            response = _error(
                403,
                "cross_site",
                f"cross-site request refused: {why}. Only this server's own page may send "
                "requests from a browser; clients without an Origin header (curl, scripts) may",
            )
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    def _cross_site(self, headers: Headers, host: str) -> str | None:
        """Why a browser request comes from another site, or ``None`` when it does not."""
        if headers.get("sec-fetch-site", "").lower() == "cross-site":
            return "the browser marks it Sec-Fetch-Site: cross-site"
        origin = headers.get("origin")
        if origin is None:
            return None
        try:
            authority = urlsplit(origin.strip()).netloc.lower()
        except ValueError:
            authority = ""
        if authority and authority == host.strip().lower():
            return None  # this server's own origin (same host and port)
        name = host_name(authority)
        if name in self.allowed and not is_loopback(name):
            return None  # a public name of this server behind a proxy that rewrites the Host
        return f"its Origin {origin[:100]!r} is not this server (allowed hosts: {self.listed})"


class BodyDeadline:
    """ASGI middleware: the whole request body within ``timeout`` seconds of its headers.

    A read past the deadline raises :class:`BodyTimeout` into the app; when it comes back out
    before a response started, this answers 408 with ``Connection: close`` (the rest of the body
    is never read). Reads after the body's last chunk (waiting for a disconnect) are not bounded.
    """

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise BodyTimeout(self.timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except BodyTimeout as exc:
            if started:
                raise
            response = _error(408, "timeout", str(exc), connection="close")
            await response(scope, receive, send)
