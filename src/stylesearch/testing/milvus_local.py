"""Start and stop a local Milvus standalone server from the PyPI package ``milvus`` (tests, the
benchmark, trying the Milvus backend on one machine).

Every component is pinned to 127.0.0.1 (ENVIRONMENT.md: otherwise Milvus advertises the first
non-loopback address), start-up is bounded in time, and :meth:`LocalMilvus.stop` ends the server
by its PID: SIGTERM, then SIGKILL after ``stop_timeout`` seconds.

    >>> with LocalMilvus("/tmp/milvus-data") as server:         # doctest: +SKIP
    ...     uri = server.uri                                      # "http://127.0.0.1:19530"

A production deployment uses its own Milvus (standalone or a cluster) and only its URI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["COMPONENTS", "LocalMilvus", "MilvusStartError"]

#: the Milvus components whose advertised ip is pinned to 127.0.0.1
COMPONENTS = (
    "rootCoord",
    "proxy",
    "queryCoord",
    "queryNode",
    "indexCoord",
    "indexNode",
    "dataCoord",
    "dataNode",
)


class MilvusStartError(RuntimeError):
    """The local Milvus server did not start (the message names its log folder)."""


class LocalMilvus:
    """A Milvus standalone server in ``data_dir`` (its data, config and logs), on 127.0.0.1.

    Args:
        data_dir: folder for the server's files (created; reused across starts).
        start_timeout: seconds to wait for the health check and a client connection.
        stop_timeout: seconds between SIGTERM and SIGKILL.
    """

    def __init__(
        self, data_dir: str | Path, *, start_timeout: float = 120.0, stop_timeout: float = 10.0
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.pid: int | None = None
        self.port: int | None = None
        self._server: Any = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise MilvusStartError("the local Milvus server is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the server and wait until it answers; returns its URI."""
        try:
            from milvus import MilvusServer
        except ImportError:
            raise MilvusStartError(
                "the local Milvus server needs the `milvus` package: "
                "pip install 'stylesearch[milvus]'"
            ) from None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = MilvusServer(wait_for_started=False)
        server.set_base_dir(str(self.data_dir))
        for comp in COMPONENTS:
            server.config.set(f"{comp}.ip", "127.0.0.1")
        cwd = os.getcwd()
        try:
            server.start()
        finally:
            os.chdir(cwd)  # MilvusServer.start changes the working folder
        self._server = server
        self.pid = server.server_proc.pid
        self.port = int(server.config.get("proxy_port"))
        deadline = time.monotonic() + self.start_timeout
        health = f"http://127.0.0.1:{server.webservice_port}/healthz"
        while True:
            if server.server_proc.poll() is not None:
                self._forget()
                raise MilvusStartError(
                    f"Milvus exited during start-up; see its logs in {self.data_dir / 'logs'}"
                )
            try:
                with urllib.request.urlopen(health, timeout=2) as resp:
                    if b"OK" in resp.read():
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise MilvusStartError(
                    f"Milvus did not start in {self.start_timeout:.0f} s; see its logs in "
                    f"{self.data_dir / 'logs'}"
                )
            time.sleep(0.2)
        self._wait_for_client(deadline)
        return self.uri

    def _wait_for_client(self, deadline: float) -> None:
        from pymilvus import MilvusClient

        while True:
            try:
                client = MilvusClient(uri=self.uri, timeout=5)
                client.list_collections()
                client.close()
                return
            except Exception as exc:  # noqa: BLE001 -- any client error means "not ready yet"
                if time.monotonic() > deadline:
                    self.stop()
                    raise MilvusStartError(f"Milvus does not answer at {self.uri}: {exc}") from None
                time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM the server by its PID, SIGKILL after ``stop_timeout`` seconds."""
        proc: subprocess.Popen[bytes] | None = (
            self._server.server_proc if self._server is not None else None
        )
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        self._forget()

    def _forget(self) -> None:
        if self._server is not None:
            self._server.server_proc = None  # its own stop() (also run by __del__) has no work
            for fh in self._server.proc_fds.values():
                fh.close()
            self._server.proc_fds.clear()
        self._server = None
        self.pid = None
        self.port = None

    def __enter__(self) -> LocalMilvus:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
