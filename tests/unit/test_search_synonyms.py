"""A metadata filter word covers its learned synonym group, and the switch that turns it off.

The groups are made by hand (``synonyms.json`` in a copy of the tiny model's folder): ``red`` and
``blue`` are declared synonyms, so ``+red`` with ``filter-hard`` keeps the blue items too.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from stylesearch.cli import cli
from stylesearch.model.io import SYNONYMS_FILE, load_model, read_synonyms, save_synonyms
from stylesearch.model.synonyms import Synonyms
from stylesearch.search import Query, Searcher

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def plain(index_dir) -> Searcher:
    """The tiny model as saved: no synonyms.json."""
    return Searcher.load(index_dir)


@pytest.fixture(scope="module")
def synonyms_dir(plain, tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("synonyms") / "model"
    shutil.copytree(plain.index.model_dir(None), model_dir)
    save_synonyms(model_dir, Synonyms(groups=[["red", "blue"]], items=30))
    return model_dir


@pytest.fixture(scope="module")
def grouped(plain, synonyms_dir) -> Searcher:
    return Searcher(plain.index, load_model(synonyms_dir))


@pytest.fixture(scope="module")
def item(plain) -> str:
    return plain.index.item(7).id


def _words(searcher: Searcher, row: int) -> set[str]:
    return set(searcher.model.vocab.decode(searcher.index.metadata_word_ids(row).tolist()))


def test_a_folder_without_synonyms_loads_as_before(plain, item):
    assert plain.model.synonyms is None
    response = plain.search(Query(item_id=item, add=["red"], method="filter-hard", k=50))
    assert response.synonyms == {} and response.to_dict()["synonyms"] == {}
    assert all("red" in _words(plain, r.row) for r in response.results)


def test_filter_hard_covers_the_group(grouped, plain, item):
    query = Query(item_id=item, add=["red"], method="filter-hard", k=200)
    response = grouped.search(query)
    assert response.synonyms == {"red": ["red", "blue"]}
    words = [_words(grouped, r.row) for r in response.results]
    assert all("red" in w or "blue" in w for w in words)
    assert any("blue" in w and "red" not in w for w in words)  # the group added items
    alone = plain.search(query)
    assert len(response.results) > len(alone.results)


def test_an_unwanted_word_drops_its_whole_group(grouped, item):
    response = grouped.search(Query(item_id=item, remove=["red"], method="filter-hard", k=200))
    assert response.synonyms == {"red": ["red", "blue"]}
    assert all(not {"red", "blue"} & _words(grouped, r.row) for r in response.results)


def test_must_filters_cover_the_group_in_every_method(grouped, item):
    response = grouped.search(Query(item_id=item, must=["blue"], method="visual", k=200))
    assert response.synonyms == {"blue": ["blue", "red"]}
    assert any("red" in _words(grouped, r.row) for r in response.results)


def test_the_switch_turns_it_off(grouped, plain, item, synonyms_dir, index_dir):
    query = dict(item_id=item, add=["red"], method="filter-hard", k=200)
    off = grouped.search(Query(**query, synonyms=False))
    assert off.synonyms == {}
    assert [r.id for r in off.results] == [r.id for r in plain.search(Query(**query)).results]
    searcher_off = Searcher(grouped.index, grouped.model, synonyms=False)
    assert searcher_off.search(Query(**query)).synonyms == {}
    assert searcher_off.search(Query(**query, synonyms=True)).synonyms  # the query wins
    args = ["search", "--index", str(index_dir), "--model", str(synonyms_dir), "--item", item,
            "--add", "red", "--method", "filter-hard", "--json"]  # fmt: skip
    on = json.loads(CliRunner().invoke(cli, args, catch_exceptions=False).output)
    assert on["synonyms"] == {"red": ["red", "blue"]}
    out = CliRunner().invoke(cli, [*args, "--no-synonyms"], catch_exceptions=False).output
    assert json.loads(out)["synonyms"] == {}


def test_the_soft_filter_uses_the_word_as_given(grouped, plain, item):
    query = Query(item_id=item, add=["red"], method="combined", k=10)
    assert [r.id for r in grouped.search(query).results] == [
        r.id for r in plain.search(query).results
    ]


def test_synonyms_of_another_save_are_ignored(synonyms_dir, tmp_path):
    other = tmp_path / "model"
    shutil.copytree(synonyms_dir, other)
    body = json.loads((other / SYNONYMS_FILE).read_text())
    (other / SYNONYMS_FILE).write_text(json.dumps(body | {"weights_sha256": "0" * 64}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_synonyms(other) is None
    assert any("another save" in str(w.message) for w in caught)
    with pytest.raises(Exception, match="not in the model's vocabulary"):
        save_synonyms(other, Synonyms(groups=[["red", "zzzz"]]))
