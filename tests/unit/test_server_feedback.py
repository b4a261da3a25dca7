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
