"""Every JSON answer goes through its response model: the real ones validate and arrive as the
service built them, and one that does not match its model is a logged 500, never sent."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")  # python-multipart

from fastapi.testclient import TestClient  # noqa: E402
from pydantic import BaseModel, ValidationError  # noqa: E402

from stylesearch.search import METHODS, Query  # noqa: E402
from stylesearch.server import create_app  # noqa: E402
from stylesearch.server.schemas import (  # noqa: E402
    ErrorBody,
    HealthResponse,
    ItemDetail,
    ItemsResponse,
    SearchResponseBody,
    VocabularyResponse,
    error_body,
)

LOCAL = "http://127.0.0.1:8000"


def valid(model: type[BaseModel], response: Any) -> dict[str, Any]:
    """The JSON body of a 200 answer, checked against ``model`` once more on this side."""
    assert response.status_code == 200, response.text
    body = response.json()
    model.model_validate(body)
    return body


@pytest.fixture
def buggy(service):
    """A client of ``service`` that answers a server exception as the 500 a client would see."""
    return TestClient(create_app(service), raise_server_exceptions=False, base_url=LOCAL)


# --------------------------------------------------------------------------- the real answers


def test_item_random_vocabulary_and_health_arrive_as_the_service_built_them(
    client, service, item_id
):
    body = valid(ItemDetail, client.get(f"/api/items/{item_id}"))
    assert body == service.item(item_id)
    body = valid(ItemsResponse, client.get("/api/random-items", params={"n": 7, "seed": 3}))
    assert body == {"items": service.random_items(7, 3)}
    for prefix, limit, visual in (("re", 50, True), ("", 100, False)):
        params = {"prefix": prefix, "limit": limit, "visual_only": str(visual).lower()}
        body = valid(VocabularyResponse, client.get("/api/vocabulary", params=params))
        words, total = service.vocabulary(prefix, limit, visual)
        assert body == {"prefix": prefix, "total": total, "words": words}
    assert valid(HealthResponse, client.get("/api/health")) == service.health()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_s_search_answer_validates_with_the_service_s_fields(
    client, service, item_id, method
):
    request = {"item_id": item_id, "add": ["red"], "remove": ["striped"], "method": method}
    body = valid(SearchResponseBody, client.post("/api/search", json=request))
    query = Query(item_id=item_id, add=["red"], remove=["striped"], method=method)
    expected = service.search(query)
    # nothing added or dropped on the way, down to the query settings a method does not use
    assert set(body) == set(expected) and set(body["query"]) == set(expected["query"])
    assert body["query"] == expected["query"]
    assert body["results"] == expected["results"] and body["facets"] == expected["facets"]


def test_an_upload_search_answer_validates(client, png):
    files = {"image": ("q.png", png, "image/png")}
    body = valid(SearchResponseBody, client.post("/api/search", files=files, data={"k": "3"}))
    assert body["query"]["image"] == f"<upload, {len(png)} bytes>" and len(body["results"]) == 3


def test_error_answers_validate_with_only_their_own_fields(client, item_id):
    response = client.post("/api/search", json={"item_id": item_id, "add": ["redd"]})
    body = ErrorBody.model_validate(response.json())
    assert response.status_code == 400 and set(response.json()) == {
        "error",
        "detail",
        "word",
        "closest",
    }
    assert body.word == "redd"
    response = client.post("/api/search", json={"item_id": item_id, "k": "many"})
    errors = ErrorBody.model_validate(response.json()).errors
    assert errors and errors[0].field == "k"
    assert set(client.get("/api/items/nope").json()) == {"error", "detail"}


# --------------------------------------------------------------------------- the bugs caught


def bug(response: Any) -> None:
    assert response.status_code == 500, response.text
    assert response.json()["error"] == "internal_error"


def test_a_field_the_model_does_not_declare_is_a_500(buggy, service, item_id, monkeypatch, caplog):
    real = service.health()
    monkeypatch.setattr(service, "health", lambda: real | {"uptime": 3})
    with caplog.at_level(logging.ERROR, logger="stylesearch.server"):
        bug(buggy.get("/api/health"))
    assert "internal error on GET /api/health" in caplog.text
    item = service.item(item_id)
    monkeypatch.setattr(service, "item", lambda _id: item | {"price": "9.99"})
    bug(buggy.get(f"/api/items/{item_id}"))
    monkeypatch.setattr(service, "random_items", lambda n, seed: [item])  # a detail, no summary
    bug(buggy.get("/api/random-items"))


def test_a_missing_field_or_a_wrong_type_is_a_500(buggy, service, item_id, monkeypatch):
    untitled = {k: v for k, v in service.item(item_id).items() if k != "title"}
    monkeypatch.setattr(service, "item", lambda _id: untitled)
    bug(buggy.get(f"/api/items/{item_id}"))
    words, total = service.vocabulary("", 3)
    floats = [w | {"count": float(w["count"])} for w in words]  # strict: no coercion
    monkeypatch.setattr(service, "vocabulary", lambda *args: (floats, total))
    bug(buggy.get("/api/vocabulary"))


@pytest.mark.parametrize(
    "spoil",
    [
        lambda out: out["results"][0].update(score="high"),
        lambda out: out["results"][0].update(cosine=math.nan),  # JSON has no NaN
        lambda out: out["query"].update(colour="red"),
        lambda out: out["facets"].append({"word": "red", "count": 1}),  # no synonyms nor label
        lambda out: out.update(method="magic"),
    ],
)
def test_a_search_answer_that_does_not_match_its_model_is_a_500(
    buggy, service, item_id, monkeypatch, spoil
):
    real = service.search

    def spoilt(query: Query) -> dict[str, Any]:
        out = real(query)
        spoil(out)
        return out

    monkeypatch.setattr(service, "search", spoilt)
    bug(buggy.post("/api/search", json={"item_id": item_id, "add": ["red"]}))


def test_an_error_body_with_an_undeclared_field_is_refused():
    assert error_body("unknown_word", "no", word="redd", closest=["red"]) == {
        "error": "unknown_word",
        "detail": "no",
        "word": "redd",
        "closest": ["red"],
    }
    with pytest.raises(ValidationError):
        error_body("bad_request", "no", colour="red")
    with pytest.raises(ValidationError):
        error_body("bad_request", "no", errors=[{"field": "k"}])  # no message
