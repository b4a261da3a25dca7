"""Fixtures of the HTTP API tests (test_server_api.py, test_server_guards.py): one tiny index
per module, served in-process by FastAPI's TestClient on an allowed Host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: the server answers only the Host names it is bound to (TestClient's own is "testserver")
LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, build_tiny_index) -> Path:
    root = tmp_path_factory.mktemp("server")
    build_tiny_index(root)
    return root / "exact"


@pytest.fixture(scope="module")
def service(index_dir) -> Any:
    from stylesearch.server import SearchService

    return SearchService.load(index_dir)


@pytest.fixture(scope="module")
def client(service) -> Any:
    from fastapi.testclient import TestClient

    from stylesearch.server import create_app

    return TestClient(create_app(service), base_url=LOCAL)


@pytest.fixture(scope="module")
def item_id(service) -> str:
    return service.index.item(7).id


@pytest.fixture(scope="module")
def png(service) -> bytes:
    return Path(service.index.item(7).image).read_bytes()
