"""uvicorn's h11 protocol with deadlines for slow clients (docs/server.md "What the server
guarantees").

uvicorn bounds only the idle time between two requests of a connection (``timeout_keep_alive``);
h11 bounds the size of the headers but not the time they take, so a client that sends half a
request line, or its headers one byte a second, holds a connection forever. This protocol arms
one timer per phase of each request:

* **headers**: from the connection's opening (or the end of the previous response) until the
  request's headers are complete, at most ``header_timeout`` seconds. Past it the connection is
  closed, with a 408 when part of a request had arrived.
* **body**: from the end of the headers until the body's last byte, at most ``body_timeout``
  seconds plus :data:`BODY_GRACE`. The app's :class:`~stylesearch.server.guards.BodyDeadline`
  answers a body that its route is reading with a 408 at ``body_timeout``; this timer closes the
  connection when nothing reads the body (a body sent after the answer, or to a GET).

While the app works on a complete request no timer runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from stylesearch.server.service import ServerLimits

__all__ = ["BODY_GRACE", "guarded_h11_protocol", "uvicorn_options"]

#: seconds the body timer waits beyond ``body_timeout``, so that the app's 408 comes first
BODY_GRACE = 1.0


def _timeout_response(what: str) -> bytes:
    body = f"request {what}\n".encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_h11_protocol(header_timeout: float, body_timeout: float) -> type[H11Protocol]:
    """An :class:`H11Protocol` subclass that closes connections whose headers take more than
    ``header_timeout`` seconds or whose body takes more than ``body_timeout + BODY_GRACE``."""

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._phase: str | None = None
            self._timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._watch()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel()
            super().connection_lost(exc)

        def _cancel(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _watch(self) -> None:
            """(Re)arm the timer when the client's side of the request enters a new phase."""
            state = self.conn.their_state
            phase = "headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
            if phase == self._phase:
                return
            self._cancel()
            self._phase = phase
            if phase == "headers":
                self._timer = self.loop.call_later(header_timeout, self._expire, phase)
            elif phase == "body":
                self._timer = self.loop.call_later(body_timeout + BODY_GRACE, self._expire, phase)

        def _expire(self, phase: str) -> None:
            self._timer = None
            if self.transport.is_closing() or phase != self._phase:
                return
            partial = bool(self.conn.trailing_data[0])
            if phase == "headers" and partial:
                self.logger.info("request headers incomplete after %g s: closed", header_timeout)
                self.transport.write(
                    _timeout_response(f"headers not complete within {header_timeout:g} s")
                )
            elif phase == "body":
                self.logger.info("request body incomplete after %g s: closed", body_timeout)
            self.transport.close()

    return GuardedH11Protocol


def uvicorn_options(limits: ServerLimits) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` / ``uvicorn.Config`` that apply ``limits``' header
    and body deadlines and header size."""
    return {
        "http": guarded_h11_protocol(limits.header_timeout, limits.body_timeout),
        "h11_max_incomplete_event_size": limits.max_header_bytes,
    }
