"""Index a tiny trained model's catalog and search it: every method against brute force."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylesearch.catalog.manifest import load_catalog
from stylesearch.cli import cli
from stylesearch.index import build as build_module
from stylesearch.index.build import build_index
from stylesearch.index.store import Index
from stylesearch.search import (
    IndexMismatchError,
    Query,
    QueryError,
    Searcher,
    UnknownWordError,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

K = 5


@pytest.fixture(scope="module")
def setup(tmp_path_factory, build_tiny_index):
    root = tmp_path_factory.mktemp("search")
    manifest = build_tiny_index(root, backends=("exact", "faiss"))
    return root, manifest


@pytest.fixture(scope="module")
def searchers(setup):
    root, _ = setup
    return {b: Searcher.load(root / b) for b in ("exact", "faiss")}


def _brute_force(searcher, method, image_vec, add, remove, must=(), must_not=()):
    """Scores of every item computed here from the model and the stored arrays, with the
    searcher's settings in force (an untuned index: the defaults)."""
    model, index, vocab = searcher.model, searcher.index, searcher.model.vocab
    a = [vocab.index(w) for w in add]
    r = [vocab.index(w) for w in remove]
    with torch.no_grad():
        emb = model.encode_words(torch.arange(len(vocab))).numpy()
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    # the index vector is [n(f_I); n(look)] / sqrt(2) when the model has a look
    d = model.config.embed_dim
    joint, look = image_vec[:d], image_vec[d:]
    joint = joint / np.linalg.norm(joint)
    if method == "text":
        q = unit[a].sum(0) - unit[r].sum(0)
    elif method in ("arithmetic", "combined"):
        w = searcher.settings.word_weight[method]
        q = joint + w * (unit[a].sum(0) - unit[r].sum(0))
    else:
        q = joint
    q = q / np.linalg.norm(q)
    if look.size:  # the query is n([(1 - a) q; a n(look)]), without a look part for text
        share = 0.0 if method == "text" else searcher.settings.look_weight
        q = np.concatenate([(1 - share) * q, share * look / np.linalg.norm(look)])
        q = q / np.linalg.norm(q)
    vectors = np.asarray(index.vectors, dtype=np.float64)
    cos = vectors @ q
    probs = np.asarray(index.attributes, dtype=np.float64)
    # an unwanted word's factor: 1 - p after log-odds fusion, max(0, 1 - p / (1 - b)) after a
    # blend at the index's metadata weight b
    b = index.manifest["metadata_weight"]
    blend = index.manifest.get("metadata_fusion", "blend") == "blend" and b < 1
    unwanted = np.maximum(1 - probs[:, r] / (1 - b), 0) if blend else 1 - probs[:, r]
    p = np.prod(probs[:, a], axis=1) * np.prod(unwanted, axis=1)
    g = searcher.settings.cosine_power
    score = ((1 + cos) / 2) ** g * p if method in ("filter", "combined") else cos.copy()
    if method == "filter-hard":
        must, must_not = (*must, *add), (*must_not, *remove)
    for row in range(index.count):
        words = set(vocab.decode(index.metadata_word_ids(row)))
        if not set(must) <= words or set(must_not) & words:
            score[row] = -np.inf
    order = [i for i in np.argsort(-score, kind="stable") if np.isfinite(score[i])]
    return [index.item(i).id for i in order[:K]], score[order[:K]]


QUERIES = [
    ("visual", ["red"], []),
    ("text", ["red", "circle"], ["striped"]),
    ("arithmetic", ["blue"], ["dotted"]),
    ("filter", ["green"], ["solid"]),
    ("filter-hard", ["star"], []),
    ("combined", ["yellow", "square"], ["striped"]),
]


@pytest.mark.parametrize(("method", "add", "remove"), QUERIES, ids=[q[0] for q in QUERIES])
def test_every_method_against_brute_force(setup, searchers, method, add, remove):
    root, manifest = setup
    image = load_catalog(manifest).items[7].image
    for backend, searcher in searchers.items():
        response = searcher.search(Query(image=image, add=add, remove=remove, method=method, k=K))
        image_vec = searcher.encode_image(image).astype(np.float64)
        ids, scores = _brute_force(searcher, method, image_vec, add, remove)
        got = [r.id for r in response.results]
        assert got == ids, (backend, method)
        np.testing.assert_allclose([r.score for r in response.results], scores, atol=1e-5)
        assert response.method == method and response.query["add"] == add


def test_query_by_item_id_and_bytes(setup, searchers):
    _, manifest = setup
    item = load_catalog(manifest).items[4]
    searcher = searchers["exact"]
    by_id = searcher.search(Query(item_id=item.id, method="visual", k=3))
    # the item's own cosine: 1 without a look; with one, the query weighs the unit parts of the
    # item's vector [n(f_I); n(look)] / sqrt(2) by 1 - a and a: 1 / sqrt(2 ((1 - a)^2 + a^2))
    a = searcher.settings.look_weight if searcher.model.look is not None else 0.5
    own = 1 / np.sqrt(2 * ((1 - a) ** 2 + a**2))
    assert by_id.results[0].id == item.id and by_id.results[0].cosine == pytest.approx(
        own, abs=1e-5
    )
    by_bytes = searcher.search(Query(image=item.image.read_bytes(), method="visual", k=3))
    assert [r.id for r in by_bytes.results] == [r.id for r in by_id.results]
    with pytest.raises(QueryError, match="no item with id"):
        searcher.search(Query(item_id="nope", method="visual"))


def test_faiss_and_exact_agree(setup, searchers):
    _, manifest = setup
    for item in load_catalog(manifest).items[:10]:
        for method in ("visual", "combined", "filter"):
            q = Query(item_id=item.id, add=["red"], method=method, k=K)
            a, b = (searchers[x].search(q) for x in ("exact", "faiss"))
            assert [r.id for r in a.results] == [r.id for r in b.results]


def test_words_go_through_the_text_pipeline(searchers):
    searcher = searchers["exact"]
    response = searcher.search(Query(item_id=searcher.index.item(0).id, add=["Circles"], k=2))
    assert response.query["add"] == ["circle"]
    parsed = searcher.search(Query(item_id=searcher.index.item(0).id, text="+Circles -RED", k=2))
    assert parsed.query["add"] == ["circle"] and parsed.query["remove"] == ["red"]


def test_unknown_word_lists_the_closest(searchers):
    with pytest.raises(UnknownWordError, match=r"unknown word 'circel'.*closest: circle"):
        searchers["exact"].search(Query(item_id="shape-00000", add=["circel"]))


def test_a_filter_that_matches_nothing_is_an_empty_result(searchers):
    response = searchers["exact"].search(
        Query(item_id="shape-00000", method="visual", must=["circle", "square"])
    )
    assert response.results == [] and "no item matches" in response.message
    assert response.to_dict()["results"] == []


def test_model_mismatch_is_refused(setup, tmp_path):
    root, _ = setup
    copy = tmp_path / "index"
    shutil.copytree(root / "exact", copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model_fingerprint"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="rebuild the index"):
        Searcher.load(copy)
    result = CliRunner().invoke(
        cli, ["search", "--index", str(copy), "--item", "shape-00000", "--method", "visual"]
    )
    assert result.exit_code == 1 and "was built with model 000000000000" in result.output


def test_an_interrupted_build_keeps_the_old_index(setup, tmp_path, monkeypatch):
    root, manifest = setup
    out = tmp_path / "index"
    shutil.copytree(root / "exact", out)
    before = Index.load(out).manifest["created"]

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build_module.IndexWriter, "set_metadata", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_index(root / "model", manifest, out, backend="exact", num_workers=0)
    assert Index.load(out).manifest["created"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.lock", "index"]


def test_cli_index_and_search(setup, tmp_path):
    root, manifest = setup
    runner = CliRunner()
    out = tmp_path / "cli-index"
    result = runner.invoke(
        cli,
        [
            "index",
            "--model",
            str(root / "model"),
            "--catalog",
            str(manifest),
            "--out",
            str(out),
            "--backend",
            "exact",
            "--workers",
            "0",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "indexed 60 items" in result.output
    manifest_of = json.loads((out / "manifest.json").read_text())
    assert (manifest_of["metadata_fusion"], manifest_of["metadata_weight"]) == ("log-odds", 3.0)
    bad = runner.invoke(
        cli,
        ["index", "--model", str(root / "model"), "--catalog", str(manifest), "--out",
         str(tmp_path / "bad"), "--metadata-fusion", "blend", "--metadata-weight", "1.5"],
    )  # fmt: skip
    assert bad.exit_code != 0 and "must be in [0, 1], got 1.5" in bad.output, bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "bad").exists()
    result = runner.invoke(
        cli,
        [
            "search",
            "--index",
            str(out),
            "--item",
            "shape-00003",
            "--query",
            "+red -striped",
            "-k",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {
        "method",
        "query",
        "took_ms",
        "results",
        "message",
        "ignored_words",
        "synonyms",
    }
    assert data["method"] == "combined" and data["query"]["add"] == ["red"]
    assert len(data["results"]) == 3
    assert set(data["results"][0]) == {"id", "score", "cosine", "attribute_score", "title"}
    # the scoring settings the demo tunes: the soft filter's score is c~^g * p, and a word
    # weight of 0 leaves the arithmetic query the image alone
    # (look weight 0: the joint embedding alone, whose words these checks are about)
    base = ["search", "--index", str(out), "--item", "shape-00003", "-k", "5", "--json",
            "--look-weight", "0"]  # fmt: skip
    sharp = runner.invoke(cli, [*base, "--add", "red", "--method", "filter", "--cosine-power", "8"])
    assert sharp.exit_code == 0, sharp.output
    for r in json.loads(sharp.output)["results"]:
        expected = ((1 + r["cosine"]) / 2) ** 8 * r["attribute_score"]
        assert r["score"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    ids = {}
    for args in (["--method", "visual"], ["--method", "arithmetic", "--word-weight", "0"]):
        found = runner.invoke(cli, [*base, "--add", "red", *args])
        assert found.exit_code == 0, found.output
        ids[args[1]] = [r["id"] for r in json.loads(found.output)["results"]]
    assert ids["visual"] == ids["arithmetic"]
    weighted = runner.invoke(cli, [*base, "--add", "red", "--method", "arithmetic"])
    assert [r["id"] for r in json.loads(weighted.output)["results"]] != ids["visual"]
    table = runner.invoke(
        cli, ["search", "--index", str(out), "--item", "shape-00003", "--add", "red", "-k", "2"]
    )
    assert table.exit_code == 0 and "score" in table.output and "shape-" in table.output
    bad = runner.invoke(
        cli, ["search", "--index", str(out), "--item", "shape-00003", "--add", "zebra"]
    )
    assert bad.exit_code == 1 and "unknown word 'zebra'" in bad.output
    syntax = runner.invoke(cli, ["search", "--index", str(out), "--item", "x", "--query", "+"])
    assert syntax.exit_code == 1 and "must be followed by a word" in syntax.output
    usage = runner.invoke(cli, ["index", "--model", str(root / "model")])
    assert usage.exit_code == 2 and "--catalog" in usage.output
    not_an_index = runner.invoke(cli, ["search", "--index", str(tmp_path), "--item", "x"])
    assert not_an_index.exit_code == 1 and "not a stylesearch index" in not_an_index.output
