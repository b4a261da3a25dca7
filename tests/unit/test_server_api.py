"""The HTTP API in-process (FastAPI's TestClient, no sockets): every endpoint, every bad input.

A tiny model is trained on a 60-item shapes catalog once per module (a few seconds) and indexed
with the exact backend. The schema fuzz test (schemathesis) is marked ``slow``.
"""

from __future__ import annotations

import io
import re
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")  # python-multipart

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from stylesearch.cli import cli  # noqa: E402
from stylesearch.search import METHODS, Query  # noqa: E402
from stylesearch.search.settings import DEFAULT_SETTINGS  # noqa: E402
from stylesearch.server import SearchService, ServerLimits, create_app  # noqa: E402
from stylesearch.server.app import STATIC_DIR  # noqa: E402

#: the server answers only the Host names it is bound to (TestClient's own is "testserver")
LOCAL = "http://127.0.0.1:8000"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels but holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- health, items


def test_health(client, service):
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["items"] == 60 and body["vocabulary"] == len(service.words)
    assert body["backend"] == "exact"
    # the tiny model of tests/conftest.py keeps the default look
    assert body["look_dim"] == 32 and body["look_kind"] == "pixel-shading"
    # the index's fusion of its items' text into p: the default of stylesearch index
    assert body["text_fusion"] == {"rule": "log-odds", "weight": 3.0}
    # an untuned index: the measured defaults are in force, and say so
    assert body["settings"] == DEFAULT_SETTINGS.to_dict()
    assert body["settings"]["source"] == "default"


def test_health_lists_the_search_methods_for_the_page(client):
    body = client.get("/api/health").json()
    assert [m["name"] for m in body["methods"]] == list(METHODS)
    assert all(m["label"] for m in body["methods"]) and body["default_method"] == "combined"
    page = client.get("/").text
    assert "<option" not in page.split('id="method"')[1].split("</select>")[0]  # from the API


def test_item(client, service, item_id):
    body = client.get(f"/api/items/{item_id}").json()
    assert body["id"] == item_id and body["title"] == service.index.item(7).title
    assert body["image_url"] == f"/api/items/{item_id}/image"
    ps = [a["p"] for a in body["attributes"]]
    assert len(ps) == 8 and ps == sorted(ps, reverse=True)
    assert all(w in service.words for w in body["metadata"])


def test_item_image_by_id(client, service, item_id):
    response = client.get(f"/api/items/{item_id}/image")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == Path(service.index.item(7).image).read_bytes()


def test_unknown_item_is_404(client):
    assert_error(client.get("/api/items/no-such-item"), 404, "unknown_item")
    assert_error(client.get("/api/items/no-such-item/image"), 404, "unknown_item")


def test_item_image_never_opens_a_client_path(client):
    for path in ("/api/items/..%2F..%2Fetc%2Fpasswd/image", "/api/items/%2Fetc%2Fpasswd/image"):
        assert client.get(path).status_code == 404
    response = client.post("/api/search", json={"image": "/etc/passwd", "add": ["red"]})
    body = assert_error(response, 400, "bad_request")
    assert "image" in body["detail"]


def test_item_image_file_gone_is_404(client, service, item_id, monkeypatch):
    monkeypatch.setattr(service, "image_path", lambda _id: "/nonexistent/x.png")
    assert_error(client.get(f"/api/items/{item_id}/image"), 404, "image_missing")


def test_random_items(client, service):
    body = client.get("/api/random-items", params={"n": 5, "seed": 11}).json()
    ids = [it["id"] for it in body["items"]]
    assert len(ids) == len(set(ids)) == 5
    again = client.get("/api/random-items", params={"n": 5, "seed": 11}).json()
    assert [it["id"] for it in again["items"]] == ids
    assert len(client.get("/api/random-items").json()["items"]) == 12
    for bad in ("0", "101", "-1", "abc"):
        assert_error(client.get("/api/random-items", params={"n": bad}), 400, "bad_request")


def test_vocabulary(client, service):
    body = client.get("/api/vocabulary", params={"prefix": "Re", "limit": 50}).json()
    words = [w["word"] for w in body["words"]]
    assert body["prefix"] == "re" and "red" in words and body["total"] == len(words)
    starting = [w for w in words if w.startswith("re")]
    assert words[: len(starting)] == starting  # prefix matches first
    counts = [w["count"] for w in body["words"][: len(starting)]]
    assert counts == sorted(counts, reverse=True)
    everything = client.get("/api/vocabulary", params={"limit": 100}).json()
    assert everything["total"] == len(service.words)
    assert len(client.get("/api/vocabulary", params={"prefix": "re", "limit": 1}).json()["words"])
    assert client.get("/api/vocabulary", params={"prefix": "zzzz"}).json()["words"] == []
    for params in ({"limit": 0}, {"limit": 101}, {"prefix": "x" * 65}):
        assert_error(client.get("/api/vocabulary", params=params), 400, "bad_request")


def test_vocabulary_of_a_model_folder_without_grounding(client, service):
    # the tiny model held out no items: its folder has no grounding.json, as folders saved
    # before grounding existed; it loads and serves, every word visual with a null grounding
    assert service.grounding is None
    model_dir = Path(service.index.model_dir(None))
    assert not (model_dir / "grounding.json").exists()
    body = client.get("/api/vocabulary", params={"limit": 100}).json()
    assert body["words"] and all(
        set(w) == {"word", "count", "grounding", "visual", "synonyms"} for w in body["words"]
    )
    assert all(w["grounding"] is None and w["visual"] is True for w in body["words"])


def test_a_model_folder_with_grounding_serves_it(service, index_dir, tmp_path):
    import shutil

    from stylesearch.model.grounding import Grounding
    from stylesearch.model.io import save_grounding

    model_dir = tmp_path / "model"
    shutil.copytree(service.index.model_dir(None), model_dir)
    scores = dict.fromkeys(service.words, 0.5) | {service.words[0]: None}
    save_grounding(model_dir, Grounding(scores=scores, items=7))
    grounded = SearchService.load(index_dir, model_dir=model_dir)
    client = TestClient(create_app(grounded), base_url=LOCAL)
    # no word is visual: none is suggested; visual_only=false lists them all
    assert client.get("/api/vocabulary", params={"limit": 100}).json()["words"] == []
    params = {"limit": 100, "visual_only": "false"}
    words = client.get("/api/vocabulary", params=params).json()["words"]
    assert len(words) == len(service.words)
    by_word = {w["word"]: w for w in words}
    assert by_word[service.words[0]]["grounding"] is None
    assert not any(w["visual"] for w in words)  # 0.5 < 0.75; no score: not visual
    assert all(w["grounding"] == 0.5 for w in words if w["word"] != service.words[0])


# --------------------------------------------------------------------------- search


def test_search_by_item_matches_the_searcher(client, service, item_id):
    response = client.post(
        "/api/search", json={"item_id": item_id, "query": "+red -striped", "k": 5}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = service.searcher.search(
        Query(item_id=item_id, add=["red"], remove=["striped"], k=5)
    ).to_dict()
    assert body["method"] == "combined"
    assert body["query"]["add"] == ["red"] and body["query"]["remove"] == ["striped"]
    assert [r["id"] for r in body["results"]] == [r["id"] for r in expected["results"]]
    for got, want in zip(body["results"], expected["results"], strict=True):
        for key in ("score", "cosine", "attribute_score", "title"):
            assert got[key] == pytest.approx(want[key])
        assert got["image_url"] == f"/api/items/{got['id']}/image"
        assert len(got["attributes"]) == 5
    for facet in body["facets"]:
        assert 1 <= facet["count"] <= 5 and facet["word"] in service.words


def test_search_settings_of_one_request_override_the_index(client, service, item_id):
    body = {"item_id": item_id, "query": "+red -striped", "k": 5}
    plain = client.post("/api/search", json=body).json()
    assert plain["query"]["word_weight"] == DEFAULT_SETTINGS.word_weight["combined"]
    assert plain["query"]["cosine_power"] == DEFAULT_SETTINGS.cosine_power
    asked = client.post("/api/search", json={**body, "word_weight": 2, "cosine_power": 1}).json()
    assert asked["query"]["word_weight"] == 2.0 and asked["query"]["cosine_power"] == 1.0
    expected = service.searcher.search(
        Query(item_id=item_id, add=["red"], remove=["striped"], k=5, word_weight=2, cosine_power=1)
    )
    assert [r["id"] for r in asked["results"]] == [r.id for r in expected.results]
    # the request changed nothing for the next one
    assert client.post("/api/search", json=body).json()["results"] == plain["results"]
    visual = client.post("/api/search", json={**body, "method": "visual"}).json()["query"]
    assert "word_weight" not in visual and "cosine_power" not in visual


def test_search_words_as_lists_and_every_method(client, item_id):
    for method in ("visual", "text", "arithmetic", "filter", "filter-hard", "combined"):
        response = client.post(
            "/api/search",
            json={"item_id": item_id, "add": ["red"], "remove": ["striped"], "method": method},
        )
        assert response.status_code == 200, (method, response.text)
        assert response.json()["method"] == method
    text_only = client.post("/api/search", json={"add": ["red"], "method": "text", "k": 3})
    assert text_only.status_code == 200 and len(text_only.json()["results"]) == 3


def test_search_hard_filters(client, service, item_id):
    body = client.post(
        "/api/search", json={"item_id": item_id, "must": ["red"], "method": "visual"}
    ).json()
    for r in body["results"]:
        row = service.index.row_of(r["id"])
        assert "red" in service.vocab.decode(service.index.metadata_word_ids(row).tolist())


def test_search_upload_matches_the_searcher(client, service, png):
    response = client.post(
        "/api/search",
        files={"image": ("q.png", png, "image/png")},
        data={"add": ["red", "circle"], "remove": ["dotted"], "k": "4"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = service.searcher.search(
        Query(image=png, add=["red", "circle"], remove=["dotted"], k=4)
    ).to_dict()
    assert [r["id"] for r in body["results"]] == [r["id"] for r in expected["results"]]
    assert body["query"]["image"] == f"<upload, {len(png)} bytes>"
    by_query = client.post(
        "/api/search", files={"image": ("q.png", png, "image/png")}, data={"query": "+red"}
    )
    assert by_query.status_code == 200 and by_query.json()["query"]["add"] == ["red"]


def test_unknown_word_lists_closest(client, item_id):
    body = assert_error(
        client.post("/api/search", json={"item_id": item_id, "add": ["redd"]}), 400, "unknown_word"
    )
    assert body["word"] == "redd" and "red" in body["closest"]
    body = assert_error(
        client.post("/api/search", json={"item_id": item_id, "query": "-stripedd"}),
        400,
        "unknown_word",
    )
    assert "striped" in body["closest"]


def test_unknown_item_in_search_is_404(client):
    assert_error(client.post("/api/search", json={"item_id": "nope"}), 404, "unknown_item")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"add": ["red"]}, "bad_query"),  # no image, no item: missing query
        ({}, "bad_query"),
        ({"method": "text"}, "bad_query"),  # text without words
        ({"item_id": "ITEM", "method": "magic"}, "bad_request"),
        ({"item_id": "ITEM", "k": 0}, "bad_request"),
        ({"item_id": "ITEM", "k": 101}, "bad_request"),
        ({"item_id": "ITEM", "k": "many"}, "bad_request"),
        ({"item_id": "ITEM", "k": 2.5}, "bad_request"),
        ({"item_id": "ITEM", "k": "10"}, "bad_request"),  # k is a JSON integer only
        ({"item_id": "ITEM", "k": True}, "bad_request"),
        ({"item_id": "ITEM", "k": 5.0}, "bad_request"),
        ({"item_id": "ITEM", "add": ["red"], "must_not": ["red"]}, "bad_query"),
        ({"item_id": "ITEM", "remove": ["red"], "must": ["red"]}, "bad_query"),
        ({"item_id": "ITEM", "query": "+red", "must_not": ["red"]}, "bad_query"),
        ({"item_id": "ITEM", "add": ["red"], "remove": ["red"]}, "bad_query"),
        ({"item_id": "ITEM", "query": "++red"}, "bad_query"),
        ({"item_id": "ITEM", "query": "x" * 1001}, "bad_request"),
        ({"item_id": "ITEM", "add": ["red dress"]}, "bad_request"),
        ({"item_id": "ITEM", "add": ["-red"]}, "bad_request"),
        ({"item_id": "ITEM", "add": [""]}, "bad_request"),
        ({"item_id": "ITEM", "add": [3]}, "bad_request"),
        ({"item_id": "ITEM", "add": "red"}, "bad_request"),
        ({"item_id": "ITEM", "add": ["w"] * 33}, "bad_request"),
        ({"item_id": "ITEM", "colour": "red"}, "bad_request"),  # unknown field
        ({"item_id": "ITEM", "word_weight": -1}, "bad_request"),
        ({"item_id": "ITEM", "word_weight": 101}, "bad_request"),
        ({"item_id": "ITEM", "cosine_power": 0}, "bad_request"),
        ({"item_id": "ITEM", "cosine_power": "sharp"}, "bad_request"),
        ({"item_id": ""}, "bad_request"),
        ({"item_id": None, "method": "visual"}, "bad_query"),
    ],
)
def test_bad_search_requests_are_400(client, item_id, body, code):
    body = {k: (item_id if v == "ITEM" else v) for k, v in body.items()}
    assert_error(client.post("/api/search", json=body), 400, code)


def test_bad_bodies(client, item_id, png):
    headers = {"content-type": "application/json"}
    assert_error(client.post("/api/search", content=b"{nope", headers=headers), 400, "bad_request")
    assert_error(client.post("/api/search", content=b"[1, 2]", headers=headers), 400, "bad_request")
    deep = b'{"item_id": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"  # RecursionError in json
    response = client.post("/api/search", content=deep, headers=headers)
    assert "too deep" in assert_error(response, 400, "bad_request")["detail"]
    huge_k = b'{"item_id": "x", "k": ' + b"9" * 5000 + b"}"  # over Python's int-digit limit
    assert_error(client.post("/api/search", content=huge_k, headers=headers), 400, "bad_request")
    assert_error(
        client.post("/api/search", content=b"\xff\xfe", headers=headers), 400, "bad_request"
    )
    assert_error(
        client.post("/api/search", content=b"x", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert_error(client.post("/api/search"), 415, "unsupported_media_type")
    bad_multipart = {"content-type": "multipart/form-data; boundary=xyz"}
    response = client.post("/api/search", content=b"--xyz\r\ngarbage", headers=bad_multipart)
    assert response.status_code == 400
    no_boundary = {"content-type": "multipart/form-data"}
    assert_error(client.post("/api/search", content=b"x", headers=no_boundary), 400, "bad_request")
    # image and item together; image as a text field; a scalar field twice
    assert_error(
        client.post(
            "/api/search", files={"image": ("q.png", png, "image/png")}, data={"item_id": item_id}
        ),
        400,
        "bad_query",
    )
    assert_error(
        client.post("/api/search", data={"image": "/etc/passwd"}, files={"x": ("a", b"b")}),
        400,
        "bad_request",
    )
    assert_error(
        client.post(
            "/api/search",
            files=[("k", (None, "1")), ("k", (None, "2")), ("item_id", (None, item_id))],
        ),
        400,
        "bad_request",
    )

    # a form sends k as text: digits are an integer, anything else is refused
    def form(k: str):
        return client.post("/api/search", files=[("item_id", (None, item_id)), ("k", (None, k))])

    assert len(form("3").json()["results"]) == 3
    for k in ("3.0", "true", "9" * 5000, "-1"):
        assert_error(form(k), 400, "bad_request")
    assert_error(client.get("/api/search"), 405, "method_not_allowed")
    assert_error(client.get("/api/nothing-here"), 404, "not_found")


def test_not_an_image_and_truncated_image_are_400(client, png):
    def upload(data: bytes):
        return client.post("/api/search", files={"image": ("q.png", data, "image/png")})

    assert_error(upload(b"this is not an image"), 400, "not_an_image")
    assert_error(upload(b""), 400, "not_an_image")
    assert_error(upload(png[: len(png) // 2]), 400, "bad_image")
    body = assert_error(upload(png_header(100_000, 100_000)), 413, "image_too_large")
    assert "10000000000 pixels" in body["detail"]  # refused from the header, never decoded


def test_an_image_error_answers_by_its_type_not_its_message():
    from stylesearch.catalog.images import ImageError, ImageTooLargeError, NotAnImageError
    from stylesearch.server.requests import image_error

    def answer(exc: ImageError) -> tuple[int, str, str]:
        error = image_error(exc)
        return error.status, error.code, error.detail

    assert answer(ImageTooLargeError("too big")) == (413, "image_too_large", "too big")
    assert answer(NotAnImageError("junk")) == (400, "not_an_image", "junk")
    # a base ImageError is a bad image, whatever its message says
    assert answer(ImageError("image too large: x")) == (400, "bad_image", "image too large: x")
    assert answer(ImageError("not an image: x"))[:2] == (400, "bad_image")


def test_limits_bytes_and_pixels(service, png):
    limits = ServerLimits(max_upload_bytes=2000, max_pixels=32 * 32)
    client = TestClient(create_app(SearchService(service.searcher, limits)), base_url=LOCAL)
    big = io.BytesIO()
    Image.effect_noise((64, 64), 80).convert("RGB").save(big, format="PNG")
    assert len(big.getvalue()) > 2000
    upload = {"image": ("q.png", big.getvalue(), "image/png")}
    assert_error(client.post("/api/search", files=upload), 413, "too_large")
    small = io.BytesIO()
    Image.new("RGB", (33, 33), "red").save(small, format="PNG")
    assert len(small.getvalue()) < 2000
    upload = {"image": ("q.png", small.getvalue(), "image/png")}
    assert_error(client.post("/api/search", files=upload), 413, "image_too_large")
    assert client.post("/api/search", files={"image": ("q.png", png, "image/png")}).is_success
    # declared too long: refused from Content-Length before reading
    headers = {"content-type": "application/json", "content-length": "999999"}
    response = client.post("/api/search", content=b"{}", headers=headers)
    assert response.status_code in (400, 413)

    # no Content-Length (chunked): the stream is cut at the limit
    def chunks():
        yield b'{"item_id": "' + b"x" * 40_000
        yield b"x" * 40_000 + b'"}'

    response = client.post(
        "/api/search", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "too_large")


def test_uploads_that_would_take_unbounded_memory_are_refused(client, service, png):
    def upload(image: Image.Image, fmt: str = "PNG"):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        return client.post("/api/search", files={"image": ("q", buffer.getvalue(), "image/png")})

    body = assert_error(upload(Image.new("L", (25_000_000, 1))), 400, "bad_image")
    assert "too elongated" in body["detail"]
    assert_error(upload(Image.new("RGB", (1_000_000, 25))), 400, "bad_image")
    limit = service.limits.max_decode_bytes
    assert limit < 5000 * 5000 * 4  # a 25 Mpx RGB PNG is refused before decoding ...
    body = assert_error(upload(Image.new("RGB", (5000, 5000))), 413, "image_too_large")
    assert "in mode RGB needs 100000000 bytes" in body["detail"]
    assert upload(Image.new("RGB", (5000, 5000)), "JPEG").is_success  # ... a JPEG is drafted
    assert upload(Image.new("I;16", (4000, 4000), 40000)).is_success  # 32 MB as 16 bits


def test_uploads_are_decoded_at_most_max_decoding_at_once(service, png, monkeypatch):
    import stylesearch.server.app as app_module

    limits = ServerLimits(max_decoding=2)
    client = TestClient(create_app(SearchService(service.searcher, limits)), base_url=LOCAL)
    busy, most, lock = [0], [0], threading.Lock()
    real = app_module.load_image

    def slow_load(*args, **kwargs):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        threading.Event().wait(0.2)
        with lock:
            busy[0] -= 1
        return real(*args, **kwargs)

    monkeypatch.setattr(app_module, "load_image", slow_load)
    statuses: list[int] = []

    def send() -> None:
        files = {"image": ("q.png", png, "image/png")}
        statuses.append(client.post("/api/search", files=files).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert statuses == [200] * 6 and most[0] == 2


def test_a_bug_is_a_logged_500(service, item_id, monkeypatch):
    client = TestClient(create_app(service), raise_server_exceptions=False, base_url=LOCAL)

    def boom(query):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(service, "search", boom)
    body = assert_error(
        client.post("/api/search", json={"item_id": item_id}), 500, "internal_error"
    )
    assert "kaboom" not in body["detail"]


def test_concurrent_searches_agree_with_sequential(service):
    queries = [
        Query(item_id=service.index.item(row).id, add=[w], method=m, k=5)
        for row, w, m in [(1, "red", "combined"), (2, "blue", "filter"), (3, "star", "visual")]
    ] * 8
    expected = [[r["id"] for r in service.search(q)["results"]] for q in queries]
    got: list[list[str] | None] = [None] * len(queries)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            got[i] = [r["id"] for r in service.search(queries[i])["results"]]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(queries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and got == expected


# --------------------------------------------------------------------------- page, schema, CLI


def test_page_and_static_files_load_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
    assert client.get("/static/../app.py").status_code == 404


def test_openapi_documents_every_endpoint(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {
        "/api/search",
        "/api/items/{item_id}",
        "/api/items/{item_id}/image",
        "/api/random-items",
        "/api/vocabulary",
        "/api/health",
    }
    body = paths["/api/search"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    assert all("422" not in op["responses"] for ops in paths.values() for op in ops.values())
    assert client.get("/docs").status_code == 200


def test_serve_command(index_dir, tmp_path, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.output
    result = runner.invoke(cli, ["serve", "--index", str(tmp_path)])
    assert result.exit_code == 1 and "not a stylesearch index" in result.output
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    threads = torch.get_num_threads()
    try:
        result = runner.invoke(cli, ["serve", "--index", str(index_dir), "--port", "8123"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert TestClient(seen["app"], base_url=LOCAL).get("/api/health").json()["items"] == 60
    # the scoring settings reach the searcher behind the API
    built = {}
    real_load = SearchService.load

    def load(*args, **kwargs):
        built["service"] = real_load(*args, **kwargs)
        return built["service"]

    monkeypatch.setattr(SearchService, "load", load)
    try:
        args = ["serve", "--index", str(index_dir), "--word-weight", "0.25", "--cosine-power", "8"]
        result = runner.invoke(cli, args)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    searcher = built["service"].searcher
    assert searcher.cosine_power == 8.0
    assert searcher.settings.source == "given"
    assert dict(searcher.settings.word_weight) == {"arithmetic": 0.25, "combined": 0.25}
    combined = searcher.arithmetic_for("combined")
    assert combined.add_weight == combined.remove_weight == 0.25


# --------------------------------------------------------------------------- fuzzing


@pytest.mark.slow
def test_fuzz_api_from_openapi_schema_never_5xx(client):
    """schemathesis generates valid and invalid requests from the OpenAPI schema: no 5xx."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis.errors import Unsatisfiable

    allowed = {"host": "127.0.0.1:8000"}  # schemathesis' own Host, "testserver", is refused
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app, headers=allowed)
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode)

            @seed(20261126)
            @settings(
                max_examples=60,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case) -> None:
                response = case.call(headers=allowed)
                assert response.status_code < 500, (case.as_curl_command(), response.text)
                if response.status_code >= 400:
                    assert response.json()["error"]

            try:
                check()
            except Unsatisfiable:  # an operation without parameters has no invalid input
                continue
            ran += 1
    assert ran >= 11


def test_api_docs_are_served_without_a_cdn(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "unpkg" not in page.text
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        if src.startswith("/"):
            assert client.get(src).status_code == 200, src


def test_facets_skip_words_predicted_everywhere_and_count_per_result():
    from stylesearch.server.service import rank_facets

    words = ["size", "red", "striped", "blue"]
    p = np.array(
        [
            [0.9, 0.8, 0.6, 0.1],
            [0.9, 0.7, 0.2, 0.1],
            [0.9, 0.1, 0.7, 0.2],
        ]
    )
    allowed = np.array([False, True, True, True])  # "size" is predicted for most of the catalog
    # red and striped both in 2 of 3 results; red has the higher mean -> first; blue in none
    assert rank_facets(p, words, allowed, limit=10) == [
        {"word": "red", "count": 2, "synonyms": [], "label": "red"},
        {"word": "striped", "count": 2, "synonyms": [], "label": "striped"},
    ]
    assert rank_facets(p, words, allowed, limit=1) == [
        {"word": "red", "count": 2, "synonyms": [], "label": "red"}
    ]


def test_facets_merge_synonym_groups_under_their_head():
    from stylesearch.server.service import rank_facets

    words = ["red", "scarlet", "blue"]
    p = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.2, 0.6, 0.1],  # a scarlet result counts for red's facet
            [0.1, 0.1, 0.9],
        ]
    )
    allowed = np.ones(3, dtype=bool)
    # without groups: red, scarlet and blue one result each (ties: higher mean first)
    assert [f["word"] for f in rank_facets(p, words, allowed, limit=10)] == [
        "red",
        "blue",
        "scarlet",
    ]
    merged = rank_facets(p, words, allowed, limit=10, groups=[[0, 1]])
    assert merged == [
        {"word": "red", "count": 2, "synonyms": ["scarlet"], "label": "red (also: scarlet)"},
        {"word": "blue", "count": 1, "synonyms": [], "label": "blue"},
    ]


def test_search_synonyms_field_and_response(client, service, item_id, png):
    """A model's synonym groups reach the API: the response's ``synonyms``, the request's
    switch (JSON and multipart), merged facets and the vocabulary's ``synonyms``."""
    from stylesearch.model.synonyms import Synonyms

    model = service.searcher.model
    saved = model.synonyms
    model.synonyms = Synonyms(groups=[["red", "blue"]])
    try:
        body = {"item_id": item_id, "add": ["red"], "method": "filter-hard", "k": 5}
        on = client.post("/api/search", json=body).json()
        assert on["synonyms"] == {"red": ["red", "blue"]}
        off = client.post("/api/search", json={**body, "synonyms": False}).json()
        assert off["synonyms"] == {}
        form = {"add": "red", "method": "filter-hard"}
        upload = {"image": ("q.png", png, "image/png")}
        form_on = client.post("/api/search", files=upload, data=form)
        assert form_on.status_code == 200, form_on.text
        assert form_on.json()["synonyms"] == {"red": ["red", "blue"]}
        form_off = client.post("/api/search", files=upload, data={**form, "synonyms": "false"})
        assert form_off.status_code == 200, form_off.text
        assert form_off.json()["synonyms"] == {}
        assert all(f["word"] != "blue" for f in on["facets"])  # merged under red
        for facet in on["facets"]:
            also = f" (also: {', '.join(facet['synonyms'])})" if facet["synonyms"] else ""
            assert facet["label"] == facet["word"] + also
        words = client.get("/api/vocabulary", params={"prefix": "red"}).json()["words"]
        assert next(w for w in words if w["word"] == "red")["synonyms"] == ["blue"]
    finally:
        model.synonyms = saved
