"""The searcher acts on visual grounding: non-visual words rank nothing, hard filters still use
them, the threshold is configurable and a model folder without grounding.json uses every word.

The grounding is made by hand (``grounding.json`` in a copy of the tiny model's folder): every
word is visual except ``striped`` (0.2) and a brand without a score.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stylesearch.cli import cli
from stylesearch.model.grounding import VISUAL_THRESHOLD, Grounding
from stylesearch.model.io import load_model, save_grounding
from stylesearch.search import Query, QueryError, Searcher
from stylesearch.search.settings import SettingsError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NOT_VISUAL = "striped"


@pytest.fixture(scope="module")
def plain(index_dir) -> Searcher:
    """The tiny model as saved: no grounding.json, so every word is visual."""
    return Searcher.load(index_dir)


@pytest.fixture(scope="module")
def brand(plain) -> str:
    """A brand name of the shapes catalog that made it into the vocabulary."""
    words = plain.model.vocab.words
    return next(w for w in ("acme", "nordwell", "kestrel", "lumen", "vanta", "orla") if w in words)


@pytest.fixture(scope="module")
def grounded_dir(plain, brand, tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("grounded") / "model"
    shutil.copytree(plain.index.model_dir(None), model_dir)
    scores = dict.fromkeys(plain.model.vocab.words, 0.9) | {NOT_VISUAL: 0.2, brand: None}
    save_grounding(model_dir, Grounding(scores=scores, items=30))
    return model_dir


@pytest.fixture(scope="module")
def grounded(plain, grounded_dir) -> Searcher:
    return Searcher(plain.index, load_model(grounded_dir))


@pytest.fixture(scope="module")
def item(plain) -> str:
    return plain.index.item(7).id


def ranked(response) -> list[tuple[str, float, float, float]]:
    return [(r.id, r.score, r.cosine, r.attribute_score) for r in response.results]


def test_a_folder_without_grounding_uses_every_word(plain, item):
    assert plain.model.grounding is None and plain.visual_words.all()
    for method in ("combined", "filter", "arithmetic", "text"):
        response = plain.search(
            Query(item_id=item, add=["red"], remove=[NOT_VISUAL], method=method)
        )
        assert response.ignored_words == [] and response.message is None
        assert response.query["remove"] == [NOT_VISUAL]


def test_the_visual_words_follow_the_threshold(grounded, brand):
    vocab = grounded.model.vocab
    assert grounded.grounding_threshold == VISUAL_THRESHOLD
    off = {vocab.words[i] for i in np.flatnonzero(~grounded.visual_words)}
    assert off == {NOT_VISUAL, brand}  # 0.2 is below 0.75; no score is not visual


@pytest.mark.parametrize("method", ["combined", "filter", "arithmetic", "visual"])
def test_a_non_visual_word_ranks_nothing(grounded, plain, item, method):
    # the same answer as the query without the word: no word vector, no factor in p
    response = grounded.search(
        Query(item_id=item, add=["red"], remove=[NOT_VISUAL], method=method, k=8)
    )
    without = plain.search(Query(item_id=item, add=["red"], method=method, k=8))
    assert ranked(response) == ranked(without)
    assert response.ignored_words == [NOT_VISUAL]
    assert response.query["add"] == ["red"] and response.query["remove"] == []
    assert response.to_dict()["ignored_words"] == [NOT_VISUAL]
    message = response.message or ""
    assert f"{NOT_VISUAL} (grounding 0.200)" in message and "not visual" in message
    assert "filter-hard" in message and "0.75" in message


def test_a_word_without_a_score_is_named_so(grounded, item, brand):
    response = grounded.search(Query(item_id=item, text=f"+red +{brand}", method="filter"))
    assert response.ignored_words == [brand]
    assert f"{brand} (too few held-out items to score)" in response.message


def test_the_word_counts_when_it_is_visual(grounded, plain, item):
    # striped's p and vector change the ranking: the test above is not vacuous
    query = Query(item_id=item, add=["red"], remove=[NOT_VISUAL], method="filter", k=8)
    with_word, without = plain.search(query), grounded.search(query)
    assert [r.attribute_score for r in with_word.results] != [
        r.attribute_score for r in without.results
    ]


def test_hard_filters_still_use_a_non_visual_word(grounded, plain, item):
    vocab, index = grounded.model.vocab, grounded.index
    word = vocab.index(NOT_VISUAL)
    hard = Query(item_id=item, add=["red", NOT_VISUAL], method="filter-hard", k=8)
    response = grounded.search(hard)
    assert ranked(response) == ranked(plain.search(hard)) and response.results
    assert response.ignored_words == [] and response.query["must"] == ["red", NOT_VISUAL]
    assert all(word in index.metadata_word_ids(r.row) for r in response.results)
    must = grounded.search(Query(item_id=item, add=["red"], must=[NOT_VISUAL], k=8))
    assert must.ignored_words == [] and must.query["must"] == [NOT_VISUAL] and must.results
    assert all(word in index.metadata_word_ids(r.row) for r in must.results)


def test_text_needs_a_visual_word(grounded, item):
    with pytest.raises(QueryError, match="at least one word; not visual.*striped"):
        grounded.search(Query(add=[NOT_VISUAL], method="text"))
    response = grounded.search(Query(add=["red", NOT_VISUAL], method="text", k=3))
    assert response.ignored_words == [NOT_VISUAL] and response.query["add"] == ["red"]


def test_the_threshold_is_configurable(grounded, plain, item, brand):
    model = grounded.model
    query = Query(item_id=item, add=["red"], remove=[NOT_VISUAL], method="combined", k=8)
    low = Searcher(plain.index, model, grounding_threshold=0.1)
    assert (~low.visual_words).sum() == 1  # only the brand without a score
    assert ranked(low.search(query)) == ranked(plain.search(query))
    assert low.search(query).ignored_words == []
    off = Searcher(plain.index, model, grounding_threshold=None)
    assert off.visual_words.all() and off.search(query).ignored_words == []
    high = Searcher(plain.index, model, grounding_threshold=0.95)
    assert not high.visual_words.any()
    for bad in (1.5, -2, float("nan"), "0.5", True):
        with pytest.raises(SettingsError, match="grounding threshold"):
            Searcher(plain.index, model, grounding_threshold=bad)


def test_the_note_joins_a_short_hard_filter_message(grounded, item):
    response = grounded.search(
        Query(item_id=item, add=["red"], remove=[NOT_VISUAL], must=["red"], k=60)
    )
    first, second = response.message.split("; ", 1)
    assert first.startswith("only ") and "match the metadata filter" in first
    assert second.startswith("not visual, not used to rank: striped")


def test_cli_search_says_which_words_it_ignored(index_dir, grounded_dir, item):
    base = ["search", "--index", str(index_dir), "--model", str(grounded_dir), "--item", item]
    base += ["--query", f"+red -{NOT_VISUAL}", "-k", "3"]
    runner = CliRunner()
    table = runner.invoke(cli, base)
    assert table.exit_code == 0, table.output
    head = table.output.splitlines()
    assert head[0].startswith("combined +red (")  # the words used to rank
    assert head[1].startswith(f"not visual, not used to rank: {NOT_VISUAL} (grounding 0.200)")
    as_json = runner.invoke(cli, [*base, "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["ignored_words"] == [NOT_VISUAL] and data["query"]["remove"] == []
    assert "not visual" in data["message"]
    # a lower threshold uses the word; filter-hard always does
    low = json.loads(runner.invoke(cli, [*base, "--json", "--grounding-threshold", "0.1"]).output)
    assert low["ignored_words"] == [] and low["query"]["remove"] == [NOT_VISUAL]
    assert low["message"] is None
    hard = json.loads(runner.invoke(cli, [*base, "--json", "--method", "filter-hard"]).output)
    assert hard["ignored_words"] == [] and hard["query"]["must_not"] == [NOT_VISUAL]
    bad = runner.invoke(cli, [*base, "--grounding-threshold", "1.5"])
    assert bad.exit_code == 2 and "--grounding-threshold" in bad.output
