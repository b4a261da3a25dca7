"""The Milvus backend against a real Milvus server: the same queries on exact, faiss and Milvus
agree (recall@10 >= 0.99 against exact, every method, hard filters), and add / delete / merge
work on a Milvus index."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from stylesearch.cli import cli
from stylesearch.index.backends.milvus import MilvusBackend, MilvusError
from stylesearch.index.build import build_index
from stylesearch.index.filters import RowFilter
from stylesearch.index.merge import merge_indexes
from stylesearch.index.store import Index, IndexFormatError
from stylesearch.index.update import add_items, delete_items
from stylesearch.search import Query, Searcher
from stylesearch.search.topk import hard_filter_mask

pytestmark = [pytest.mark.slow, pytest.mark.milvus, pytest.mark.usefixtures("one_torch_thread")]

K = 10
METHODS = [
    ("visual", [], [], [], []),
    ("text", ["red", "circle"], ["striped"], [], []),
    ("arithmetic", ["blue"], ["dotted"], [], []),
    ("filter", ["green"], ["solid"], [], []),
    ("filter-hard", ["star"], [], [], []),
    ("filter-hard", [], ["red"], [], []),
    ("combined", ["yellow", "square"], ["striped"], [], []),
    ("combined", ["red"], [], ["circle"], []),
    ("visual", [], [], [], ["square", "red"]),
    ("filter", ["blue"], [], [], ["square"]),
]
HNSW = {"M": 16, "ef_construction": 100, "ef_search": 64}


@pytest.fixture(scope="module", autouse=True)
def _close_milvus_connections():
    """Close every pymilvus connection the tests' searchers left open when this module ends, so
    no gRPC channel outlives it into the later tests that fork DataLoader workers."""
    yield
    pymilvus = pytest.importorskip("pymilvus")
    for alias, _ in pymilvus.connections.list_connections():
        pymilvus.connections.disconnect(alias)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, build_tiny_index, milvus_uri):
    root = tmp_path_factory.mktemp("milvus-index")
    manifest = build_tiny_index(root, items=240, backends=("exact", "faiss"))
    build_index(root / "model", manifest, root / "milvus", backend="milvus", num_workers=0,
                backend_params={**HNSW, "uri": milvus_uri})  # fmt: skip
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    ids = [json.loads(line)["id"] for line in lines]
    (manifest.parent / "head.jsonl").write_text("".join(lines[:200]))
    (manifest.parent / "tail.jsonl").write_text("".join(lines[200:]))
    (manifest.parent / "rest.jsonl").write_text("".join(lines[:50] + lines[80:]))
    build_index(root / "model", manifest.parent / "rest.jsonl", root / "rest-exact",
                backend="exact", num_workers=0)  # fmt: skip
    return root, manifest, ids


def run(searcher: Searcher, item_ids: list[str]) -> list[list[str]]:
    out = []
    for item_id in item_ids:
        for method, add, remove, must, must_not in METHODS:
            q = Query(item_id=item_id, add=add, remove=remove, must=must, must_not=must_not,
                      method=method, k=K)  # fmt: skip
            out.append([r.id for r in searcher.search(q).results])
    return out


def recall(got: list[list[str]], want: list[list[str]]) -> float:
    assert all(len(g) == len(w) for g, w in zip(got, want, strict=True))
    hits = sum(len(set(g) & set(w)) for g, w in zip(got, want, strict=True))
    return hits / max(1, sum(len(w) for w in want))


def test_exact_faiss_and_milvus_agree_on_every_method(setup):
    root, _, ids = setup
    searchers = {b: Searcher.load(root / b) for b in ("exact", "faiss", "milvus")}
    assert isinstance(searchers["milvus"].index.backend, MilvusBackend)
    items = ids[::12]
    want = run(searchers["exact"], items)
    assert sum(map(len, want)) > 0.9 * K * len(items) * len(METHODS)  # the filters keep items
    per_method = {}
    for backend in ("faiss", "milvus"):
        got = run(searchers[backend], items)
        for m, (method, *_) in enumerate(METHODS):
            sel = slice(m, None, len(METHODS))
            per_method[(backend, m, method)] = recall(got[sel], want[sel])
    low = {key: r for key, r in per_method.items() if r < 0.99}
    assert not low, low


def test_milvus_hard_filters_run_as_expressions(setup):
    root, _, _ = setup
    index = Index.load(root / "milvus")
    exact = Index.load(root / "exact")
    backend = index.backend
    words = {"red": None, "circle": None}
    searcher = Searcher.load(root / "exact")
    for w in words:
        words[w] = searcher.word_id(w)
    mask = hard_filter_mask(index, [], [words["red"]])
    assert isinstance(mask, RowFilter) and mask.must_not == (words["red"],)
    assert mask.mask.mean() > backend.hnsw.exact_below  # answered by Milvus, not the local subset
    rows = backend._milvus_rows(np.asarray(index.vectors[3]), K, "not array_contains_any(words, "
                                f"[{words['red']}])")  # fmt: skip
    assert rows.shape[0] == K and mask.mask[rows].all()
    queries = np.asarray(index.vectors[:20])
    for allowed in (mask, hard_filter_mask(index, [words["circle"]], []), None):
        _, got = backend.search(queries, K, allowed)
        _, want = exact.backend.search(queries, K, allowed)
        assert recall(got.tolist(), want.tolist()) >= 0.99
        if allowed is not None:
            assert allowed.mask[got[got >= 0]].all()
    # a filter of a mask alone (no words): Milvus answers more rows and the mask keeps the
    # allowed ones
    plain = np.zeros(index.count, bool)
    plain[::3] = True
    _, got = backend.search(queries, K, RowFilter.of_mask(plain))
    _, want = exact.backend.search(queries, K, RowFilter.of_mask(plain))
    assert plain[got].all() and recall(got.tolist(), want.tolist()) >= 0.99


def test_add_and_delete_on_milvus(setup, tmp_path, milvus_uri, monkeypatch):
    root, _, ids = setup
    out = tmp_path / "index"
    build_index(root / "model", root / "catalog" / "head.jsonl", out, backend="milvus",
                num_workers=0, backend_params={**HNSW, "uri": milvus_uri,
                                               "collection": "update_test"})  # fmt: skip
    result = add_items(out, root / "catalog" / "tail.jsonl", num_workers=0)
    assert (result.count, result.live) == (240, 240)
    searcher = Searcher.load(out)
    assert searcher.index.backend.count("row >= 0") == 240
    items = ids[::15]
    assert recall(run(searcher, items), run(Searcher.load(root / "exact"), items)) >= 0.99

    gone = ids[50:80]
    assert delete_items(out, gone).deleted == 30
    searcher = Searcher.load(out)
    assert searcher.index.backend.count("row >= 0") == 210  # deleted in Milvus too
    kept = [i for i in ids if i not in gone][::15]
    got = run(searcher, kept)
    assert not {i for r in got for i in r} & set(gone)
    assert recall(got, run(Searcher.load(root / "rest-exact"), kept)) >= 0.99

    # Milvus unreachable after the folder was swapped: a warning, the items stay out of results
    def down(*args, **kwargs):
        raise MilvusError("connection refused")

    monkeypatch.setattr("stylesearch.index.backends.milvus.delete_rows", down)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{ids[100]}\n{ids[101]}\n")
    r = CliRunner().invoke(cli, ["index", "delete", "--index", str(out), "--ids", str(ids_file)])
    assert r.exit_code == 0, r.output
    assert "deleted 2 items" in r.output and "not yet from the Milvus collection" in r.output
    monkeypatch.undo()
    searcher = Searcher.load(out)
    assert searcher.index.backend.count("row >= 0") == 210  # Milvus still holds the two
    got = run(searcher, [ids[100 - 1], ids[102]])
    assert not {i for r in got for i in r} & {ids[100], ids[101]}

    # the collection must hold the index's live items, else loading is refused
    searcher.index.backend.collection.delete("row in [0, 1, 2]")
    with pytest.raises(IndexFormatError, match="holds 207 of the index's 208 items"):
        Index.load(out)
    r = CliRunner().invoke(cli, ["search", "--index", str(out), "--item", ids[5]])
    assert r.exit_code == 1 and "rebuild the index" in r.output


def test_shards_merge_into_milvus_and_collections_are_refused(setup, tmp_path, milvus_uri):
    root, manifest, ids = setup
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"s{i}")
        build_index(root / "model", manifest, shards[-1], backend="exact", num_workers=0,
                    shard=(i, 2))  # fmt: skip
    out = tmp_path / "merged"
    args = ["index", "merge", "--out", str(out), *map(str, shards), "--backend", "milvus",
            "--milvus-uri", milvus_uri, "--collection", "merged_test", "--hnsw-m", "16",
            "--quiet"]  # fmt: skip
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    searcher = Searcher.load(out)
    assert searcher.index.manifest["backend"]["params"]["collection"] == "merged_test"
    items = ids[::20]
    assert recall(run(searcher, items), run(Searcher.load(root / "exact"), items)) >= 0.99
    params = {**HNSW, "uri": milvus_uri, "collection": "merged_test"}
    with pytest.raises(MilvusError, match="already has a collection 'merged_test'"):
        merge_indexes(tmp_path / "again", shards, backend="milvus", backend_params=params)
    assert not (tmp_path / "again").exists()


def test_the_uri_can_be_overridden_and_a_dead_server_is_a_clear_error(
    setup, tmp_path, milvus_uri, monkeypatch
):
    import shutil

    root, _, ids = setup
    copy = tmp_path / "moved"
    shutil.copytree(root / "milvus", copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["backend"]["params"]["uri"] = "http://127.0.0.1:9"  # nothing listens there
    (copy / "manifest.json").write_text(json.dumps(manifest))
    r = CliRunner().invoke(cli, ["search", "--index", str(copy), "--item", ids[0]])
    assert r.exit_code == 1 and "cannot connect to Milvus at http://127.0.0.1:9" in r.output
    monkeypatch.setenv("STYLESEARCH_MILVUS_URI", milvus_uri)
    response = Searcher.load(copy).search(Query(item_id=ids[0], method="visual", k=3))
    assert response.results[0].id == ids[0]
