"""``like`` / ``unlike`` in the HTTP API: the moved query, rejected items left out, bad ids 4xx;
and facets with synonym groups merged (the hook of rank_facets)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")

from stylesearch.search import Query  # noqa: E402
from stylesearch.search.feedback import UNLIKE_WEIGHT, move_query  # noqa: E402
from stylesearch.server.service import rank_facets  # noqa: E402


def search(client, **body):
    return client.post("/api/search", json={"method": "visual", "k": 8, **body})


def test_unlike_moves_the_query_away_and_drops_the_item(client, service, item_id):
    plain = search(client, item_id=item_id).json()
    ids = [r["id"] for r in plain["results"]]
    rejected = ids[1]
    answer = search(client, item_id=item_id, unlike=[rejected])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    got = [r["id"] for r in body["results"]]
    assert rejected not in got and len(got) == 8
    assert body["query"]["unlike"] == [rejected] and body["query"]["like"] == []
    # the cosines are those of the moved query n(q - beta v)
    vectors = np.asarray(service.index.vectors)
    q = service.searcher._query_vector(Query(item_id=item_id, method="visual"), [], [])
    moved = move_query(q, np.zeros((0, q.shape[0])), vectors[[service.index.row_of(rejected)]])
    for r in body["results"]:
        expected = float(vectors[service.index.row_of(r["id"])] @ moved)
        assert r["cosine"] == pytest.approx(expected, abs=1e-4)
    # and it is what the searcher answers
    want = service.searcher.search(Query(item_id=item_id, unlike=[rejected], method="visual", k=8))
    assert got == [r.id for r in want.results]


def test_like_moves_the_query_towards_the_item(client, service, item_id):
    far = search(client, item_id=item_id, k=100).json()["results"][-1]["id"]
    plain = search(client, item_id=item_id, k=100).json()
    liked = search(client, item_id=item_id, k=100, like=[far], like_weight=2).json()
    rank = lambda body: [r["id"] for r in body["results"]].index(far)  # noqa: E731
    assert rank(liked) < rank(plain)


def test_unlike_weight_zero_only_drops_the_item(client, item_id):
    ids = [r["id"] for r in search(client, item_id=item_id, k=9).json()["results"]]
    body = search(client, item_id=item_id, k=9, unlike=[ids[1]], unlike_weight=0).json()
    got = [r["id"] for r in body["results"]]
    assert len(got) == 9 and got[:8] == [i for i in ids if i != ids[1]]


def test_feedback_with_words_and_an_upload(client, service, png, item_id):
    rejected = service.index.item(3).id
    answer = client.post(
        "/api/search",
        files={"image": ("q.png", png, "image/png")},
        data={"add": ["red"], "unlike": [rejected, item_id], "like": [service.index.item(4).id]},
    )
    assert answer.status_code == 200, answer.text
    got = [r["id"] for r in answer.json()["results"]]
    assert rejected not in got and item_id not in got


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"unlike": ["no-such-item"]}, 404, "unknown_item"),
        ({"like": ["no-such-item"]}, 404, "unknown_item"),
        ({"unlike": ["x"] * 33}, 400, "bad_request"),
        ({"like": ["x"] * 33}, 400, "bad_request"),
        ({"unlike": [""]}, 400, "bad_request"),
        ({"unlike": ["x" * 5000]}, 400, "bad_request"),
        ({"unlike": "ITEM"}, 400, "bad_request"),
        ({"unlike": [3]}, 400, "bad_request"),
        ({"unlike_weight": -1}, 400, "bad_request"),
        ({"like_weight": 5}, 400, "bad_request"),
        ({"unlike": ["ITEM"]}, 400, "bad_query"),  # the query item itself
        ({"like": ["OTHER"], "unlike": ["OTHER"]}, 400, "bad_query"),
    ],
)
def test_bad_feedback_is_4xx(client, service, item_id, body, status, code):
    other = service.index.item(2).id
    swap = {"ITEM": item_id, "OTHER": other}

    def fill(v):
        if isinstance(v, list):
            return [swap.get(x, x) if isinstance(x, str) else x for x in v]
        return swap.get(v, v) if isinstance(v, str) else v

    answer = search(client, item_id=item_id, **{k: fill(v) for k, v in body.items()})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code


def test_a_search_looks_each_item_up_once_and_reads_its_results_attributes_once(
    service, item_id, monkeypatch
):
    liked, rejected = service.index.item(1).id, service.index.item(2).id
    looked: list[str] = []
    row_of = service.index.row_of
    monkeypatch.setattr(service.index, "row_of", lambda i: looked.append(i) or row_of(i))
    reads: list[int] = []
    attributes = service.searcher.attributes
    monkeypatch.setattr(
        service.searcher, "attributes", lambda rows: reads.append(len(rows)) or attributes(rows)
    )
    query = Query(item_id=item_id, like=[liked, liked], unlike=[rejected], add=["red"], k=5)
    out = service.search(query)
    assert sorted(looked) == sorted([item_id, liked, rejected])  # the service's and searcher's
    assert reads == [len(out["results"])] == [5]  # attributes and facets from one read
    assert [r["attributes"] for r in out["results"]] == [
        service.top_attributes(attributes([service.index.row_of(r["id"])])[0], 5, True)
        for r in out["results"]
    ]


def test_an_unknown_id_is_a_404_before_an_upload_is_encoded(client, service, png, monkeypatch):
    from stylesearch.search import QueryError, UnknownItemError

    encoded: list[object] = []
    monkeypatch.setattr(service.searcher, "encode_image", encoded.append)
    files = {"image": ("q.png", png, "image/png")}
    answer = client.post("/api/search", files=files, data={"like": ["no-such-item"]})
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_item"
    assert answer.json()["detail"] == "no item with id 'no-such-item' in the index"
    assert encoded == []
    # the searcher alone raises the same error, a QueryError as before
    with pytest.raises(UnknownItemError, match="^no item with id 'nope' in the index$") as info:
        service.searcher.search(Query(item_id="nope"))
    assert isinstance(info.value, QueryError) and info.value.item_id == "nope"


def test_facets_merge_synonym_groups():
    words = ["red", "scarlet", "blue", "brand"]
    p = np.array([[0.9, 0.1, 0.8, 0.9], [0.2, 0.7, 0.1, 0.9], [0.1, 0.2, 0.9, 0.9]])
    allowed = np.array([True, True, True, False])
    alone = rank_facets(p, words, allowed, 10)
    assert alone == [
        {"word": "blue", "count": 2, "synonyms": [], "label": "blue"},
        {"word": "red", "count": 1, "synonyms": [], "label": "red"},
        {"word": "scarlet", "count": 1, "synonyms": [], "label": "scarlet"},
    ]
    merged = rank_facets(p, words, allowed, 10, groups=[[0, 1], [2, 3]])
    # red or scarlet on two results; the brand is not allowed, so blue stays alone
    assert merged == [
        {"word": "blue", "count": 2, "synonyms": [], "label": "blue"},
        {"word": "red", "count": 2, "synonyms": ["scarlet"], "label": "red (also: scarlet)"},
    ] or merged == [
        {"word": "red", "count": 2, "synonyms": ["scarlet"], "label": "red (also: scarlet)"},
        {"word": "blue", "count": 2, "synonyms": [], "label": "blue"},
    ]


def test_default_unlike_weight_is_documented():
    assert UNLIKE_WEIGHT == 0.75
