"""Relevance feedback: the Rocchio move, dropping the rejected rows, and ``stylesearch search
--like / --unlike`` on a tiny index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from stylesearch.cli import cli
from stylesearch.search import Query, QueryError
from stylesearch.search.feedback import MAX_FEEDBACK_ITEMS, drop_rows, move_query
from stylesearch.search.topk import TopK


def test_move_query_by_hand():
    q = np.array([1.0, 0.0, 0.0])
    like = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    unlike = np.array([[0.6, 0.8, 0.0]])
    # q + 0.5 * (0, .5, .5) - 0.75 * (.6, .8, 0) = (0.55, -0.35, 0.25)
    expected = np.array([0.55, -0.35, 0.25]) / np.linalg.norm([0.55, -0.35, 0.25])
    got = move_query(q, like, unlike, 0.5, 0.75)
    assert got.dtype == np.float32 and got == pytest.approx(expected, abs=1e-6)
    assert np.linalg.norm(got) == pytest.approx(1.0)


def test_move_query_without_items_is_the_unit_query():
    q = np.array([3.0, 4.0])
    assert move_query(q, np.zeros((0, 2)), np.zeros((0, 2))) == pytest.approx([0.6, 0.8])


def test_moving_away_from_the_query_itself_cancels_it_out():
    q = np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="zero"):
        move_query(q, np.zeros((0, 2)), q[None], unlike_weight=1.0)
    with pytest.raises(ValueError, match="dimensions"):
        move_query(q, np.ones((1, 3)), np.zeros((0, 2)))


def test_drop_rows_keeps_the_order_and_cuts_to_k():
    top = TopK(np.array([5, 3, 9, 1]), np.array([0.9, 0.8, 0.7, 0.6]), np.zeros(4), np.ones(4))
    out = drop_rows(top, [3], 2)
    assert out.rows.tolist() == [5, 9] and out.scores.tolist() == pytest.approx([0.9, 0.7])


def test_query_validates_its_feedback():
    Query(item_id="a", like=["b"], unlike=["c"]).validate()
    for bad in (
        Query(item_id="a", like=["b"], unlike=["b"]),
        Query(item_id="a", unlike=["a"]),
        Query(item_id="a", unlike=[str(i) for i in range(MAX_FEEDBACK_ITEMS + 1)]),
    ):
        with pytest.raises(QueryError):
            bad.validate()


# --- stylesearch search --like / --unlike ---------------------------------------------------


#: the query item: an id of the tiny index's shapes catalog
ITEM = "shape-00007"


def search(index_dir: Path, *args: str | int) -> Result:
    """``stylesearch search`` of the tiny index by ``visual`` similarity."""
    base = ["search", "--index", index_dir, "--method", "visual", *args]
    return CliRunner().invoke(cli, [str(a) for a in base])


def ids_of(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [r["id"] for r in json.loads(result.output)["results"]]


def test_cli_like_moves_the_query_towards_the_item(index_dir):
    every = ids_of(search(index_dir, "--item", ITEM, "-k", 60, "--json"))
    far = every[-1]
    liked = search(index_dir, "--item", ITEM, "-k", 60, "--like", far, "--json")
    body = json.loads(liked.output)
    assert body["query"]["like"] == [far] and body["query"]["unlike"] == []
    assert ids_of(liked).index(far) < every.index(far)
    table = search(index_dir, "--item", ITEM, "-k", 3, "--like", far).output.splitlines()
    assert table[0].startswith(f"visual like:{far} (")


def test_cli_unlike_leaves_the_item_out(index_dir):
    plain = ids_of(search(index_dir, "--item", ITEM, "-k", 5, "--json"))
    rejected = plain[1]
    answer = search(index_dir, "--item", ITEM, "-k", 5, "--unlike", rejected, "--json")
    got = ids_of(answer)
    assert rejected not in got and len(got) == 5
    assert json.loads(answer.output)["query"]["unlike"] == [rejected]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--like", "no-such-item"], "no item with id 'no-such-item' in the index"),
        (["--unlike", "no-such-item"], "no item with id 'no-such-item' in the index"),
        (["--like", "shape-00001", "--unlike", "shape-00001"], "both liked and unliked"),
        (["--unlike", ITEM], "cannot also be unliked"),
        ([a for i in range(33) for a in ("--like", f"x{i}")], "at most 32 liked"),
    ],
)
def test_cli_feedback_errors_are_one_line(index_dir, args, message):
    result = search(index_dir, "--item", ITEM, *args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert message in result.output
