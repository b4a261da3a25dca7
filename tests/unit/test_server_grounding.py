"""The API acts on visual grounding: a non-visual word is never suggested, never a facet and never
ranks, a search that uses one says so, and the threshold is the service's to set.

The grounding is made by hand in a copy of the tiny model's folder: every word scores 0.9 but
one that the plain service shows as a facet (0.3).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from stylesearch.model.grounding import VISUAL_THRESHOLD, Grounding  # noqa: E402
from stylesearch.model.io import save_grounding  # noqa: E402
from stylesearch.search import Query  # noqa: E402
from stylesearch.server import SearchService, create_app  # noqa: E402

LOCAL = "http://127.0.0.1:8000"
QUERY = {"method": "visual", "k": 20}


@pytest.fixture(scope="module")
def word(service, item_id) -> str:
    """A facet of the plain service's answer to QUERY: the word made non-visual."""
    facets = service.search(Query(item_id=item_id, **QUERY))["facets"]
    return next(f["word"] for f in facets if f["word"] != "red")


@pytest.fixture(scope="module")
def model_dir(service, word, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("grounded") / "model"
    shutil.copytree(service.index.model_dir(None), folder)
    scores = dict.fromkeys(service.words, 0.9) | {word: 0.3}
    save_grounding(folder, Grounding(scores=scores, items=30))
    return folder


@pytest.fixture(scope="module")
def grounded(index_dir, model_dir) -> SearchService:
    return SearchService.load(index_dir, model_dir=model_dir)


@pytest.fixture(scope="module")
def api(grounded) -> Any:
    return TestClient(create_app(grounded), base_url=LOCAL)


def search(api, **body: Any) -> dict[str, Any]:
    response = api.post("/api/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_non_visual_word_is_never_suggested(api, service, word):
    body = api.get("/api/vocabulary", params={"prefix": word, "limit": 100}).json()
    assert word not in [w["word"] for w in body["words"]]
    assert all(w["visual"] and w["grounding"] == 0.9 for w in body["words"])
    everything = api.get("/api/vocabulary", params={"limit": 100}).json()
    assert everything["total"] == len(service.words) - 1
    # visual_only=false lists every word, the non-visual one marked so
    params = {"prefix": word, "limit": 100, "visual_only": "false"}
    listed = {w["word"]: w for w in api.get("/api/vocabulary", params=params).json()["words"]}
    count = service.counts[service.words.index(word)]
    assert listed[word] == {
        "word": word,
        "count": count,
        "grounding": 0.3,
        "visual": False,
        "synonyms": [],
    }
    params = {"limit": 100, "visual_only": "false"}
    assert api.get("/api/vocabulary", params=params).json()["total"] == len(service.words)


def test_a_non_visual_word_is_never_a_facet(api, client, item_id, word):
    plain = search(client, item_id=item_id, **QUERY)["facets"]
    facets = search(api, item_id=item_id, **QUERY)["facets"]
    assert word in [f["word"] for f in plain] and word not in [f["word"] for f in facets]
    # the others keep their order (and the next word moves up)
    assert facets[: len(plain) - 1] == [f for f in plain if f["word"] != word]


def test_a_search_that_uses_one_says_so(api, client, item_id, word):
    body = search(api, item_id=item_id, add=["red", word], k=6)
    assert body["ignored_words"] == [word]
    assert body["query"]["add"] == ["red"]
    assert f"not visual, not used to rank: {word} (grounding 0.300)" in body["message"]
    # it ranks as the query without the word
    without = search(client, item_id=item_id, add=["red"], k=6)
    assert without["ignored_words"] == [] and without["message"] is None
    assert [(r["id"], r["score"]) for r in body["results"]] == [
        (r["id"], r["score"]) for r in without["results"]
    ]
    one_line = search(api, item_id=item_id, query=f"+red -{word}", method="filter", k=6)
    assert one_line["ignored_words"] == [word] and one_line["query"]["remove"] == []


def test_a_hard_filter_on_one_still_works(api, grounded, item_id, word):
    body = search(api, item_id=item_id, add=[word], method="filter-hard", k=6)
    assert body["ignored_words"] == [] and body["query"]["must"] == [word]
    must = search(api, item_id=item_id, add=["red"], must=[word], k=6)
    assert must["ignored_words"] == [] and must["query"]["must"] == [word]
    for result in [*body["results"], *must["results"]]:
        row = grounded.index.row_of(result["id"])
        assert word in grounded.vocab.decode(grounded.index.metadata_word_ids(row).tolist())


def test_health_reports_the_threshold(api, client, service):
    health = api.get("/api/health").json()
    assert health["grounding_threshold"] == VISUAL_THRESHOLD
    assert health["visual_words"] == len(service.words) - 1
    plain = client.get("/api/health").json()  # no grounding.json: every word is visual
    assert plain["visual_words"] == len(service.words)
    openapi = api.get("/openapi.json").json()
    assert "ignored_words" in openapi["components"]["schemas"]["SearchResponseBody"]["required"]
    params = openapi["paths"]["/api/vocabulary"]["get"]["parameters"]
    assert "visual_only" in [p["name"] for p in params]


def test_the_threshold_is_the_services_to_set(index_dir, model_dir, item_id, word):
    low = SearchService.load(index_dir, model_dir=model_dir, grounding_threshold=0.25)
    api = TestClient(create_app(low), base_url=LOCAL)
    assert api.get("/api/health").json()["grounding_threshold"] == 0.25
    suggested = api.get("/api/vocabulary", params={"prefix": word, "limit": 100}).json()
    assert {"word": word, "visual": True}.items() <= {w["word"]: w for w in suggested["words"]}[
        word
    ].items()
    assert word in [f["word"] for f in search(api, item_id=item_id, **QUERY)["facets"]]
    body = search(api, item_id=item_id, add=["red", word], k=6)
    assert body["ignored_words"] == [] and body["query"]["add"] == ["red", word]
