"""A metadata filter word covers its learned synonym group, and the switches that turn it off
(``search --no-synonyms``, ``eval --no-synonyms``).

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
from stylesearch.evaluation.queries import BenchmarkQuery, write_queries
from stylesearch.index.store import read_manifest, write_manifest
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


@pytest.fixture(scope="module")
def eval_inputs(plain, synonyms_dir, index_dir, tmp_path_factory) -> dict[str, Path]:
    """``eval``'s inputs: a copy of the index recording the model with synonym groups, an
    untrained visual judge and three queries adding ``red`` (query items outside the index)."""
    from stylesearch.model.visual import VisualConfig, VisualModel, save_visual

    root = tmp_path_factory.mktemp("eval")
    index = root / "index"
    shutil.copytree(index_dir, index)
    write_manifest(index, read_manifest(index) | {"model_dir": str(synonyms_dir)})
    config = VisualConfig(embed_dim=8, image_size=32)
    save_visual(root / "visual", VisualModel(config).state_dict(), config, {}, "none")
    images = [Path(plain.index.item(row).image) for row in (3, 7, 11)]
    queries = [
        BenchmarkQuery(f"q{i}", image, f"query-{i}", ("red",), (), "add", "colour")
        for i, image in enumerate(images)
    ]
    return {"root": root, "index": index, "queries": write_queries(queries, root / "q.jsonl")}


def test_eval_no_synonyms_filters_on_the_words_as_given(eval_inputs, grouped):
    """Every system (the --compare one too) of ``eval --no-synonyms`` runs filter-hard on the
    words as given; report.json and report.md say which."""
    index = eval_inputs["index"]
    for switch, words in (("--synonyms", {"red", "blue"}), ("--no-synonyms", {"red"})):
        out = eval_inputs["root"] / switch
        args = ["eval", "--index", index, "--queries", eval_inputs["queries"],
                "--visual", eval_inputs["root"] / "visual", "--out", out, "-k", 20,
                "--compare", f"again={index}", "--methods", "filter-hard", "--no-baseline",
                "--quiet", switch]  # fmt: skip
        result = CliRunner().invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        report = json.loads((out / "report.json").read_text())
        on = switch == "--synonyms"
        assert report["synonyms"] is on
        assert [s["model"]["synonym_groups"] for s in report["systems"]] == [1, 1]
        for system in ("main", "again"):
            found = [
                _words(grouped, grouped.index.row_of(i))
                for line in (out / "per_query.jsonl").open()
                if (r := json.loads(line))["system"] == system
                for i in r["ids"]
            ]
            assert found and all(w & words for w in found)
            assert any("red" not in w for w in found) is on  # blue-only items: the group's
        line = (
            "- synonyms: on (groups learned with each model: main 1, again 1)"
            if on
            else "- synonyms: off (`--no-synonyms`): `filter-hard` matches the words as given"
        )
        head = (out / "report.md").read_text().split("\n## ")[0].splitlines()
        assert any(x.startswith(line) for x in head)
    # off, the filter reads the words the metadata judge reads: T-nDCG 1 by construction
    assert all(r["t_ndcg"] == pytest.approx(1.0) for r in report["table"])
