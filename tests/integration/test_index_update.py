"""index add / delete / merge on the exact and faiss backends: the changed index answers every
method as an index built from scratch over the same items does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stylesearch.cli import cli
from stylesearch.index import update as update_module
from stylesearch.index.build import build_index
from stylesearch.index.fusion import TextFusion
from stylesearch.index.merge import merge_indexes
from stylesearch.index.store import Index, IndexMismatchError
from stylesearch.index.update import (
    IndexUpdateError,
    add_items,
    delete_items,
    read_ids_file,
)
from stylesearch.model.look import LOOK_VERSIONS
from stylesearch.search import Query, Searcher

pytestmark = pytest.mark.usefixtures("one_torch_thread")

K = 5
METHODS = [
    ("visual", ["red"], [], [], []),
    ("text", ["red", "circle"], ["striped"], [], []),
    ("arithmetic", ["blue"], ["dotted"], [], []),
    ("filter", ["green"], ["solid"], [], []),
    ("filter-hard", ["star"], [], [], []),
    ("combined", ["yellow", "square"], ["striped"], [], []),
    ("combined", ["red"], [], ["circle"], []),
    ("filter", ["blue"], [], [], ["square"]),
]


def write_manifest(lines: list[str], path: Path) -> Path:
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory, build_tiny_index):
    """A tiny model, its 60-item catalog, full exact / faiss indexes, and manifests of parts."""
    root = tmp_path_factory.mktemp("update")
    manifest = build_tiny_index(root, backends=("exact", "faiss"))
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    parts = {
        "head": write_manifest(lines[:40], manifest.parent / "head.jsonl"),
        "tail": write_manifest(lines[40:], manifest.parent / "tail.jsonl"),
        "dup": write_manifest(lines[35:45], manifest.parent / "dup.jsonl"),
        "rest": write_manifest(lines[:10] + lines[20:], manifest.parent / "rest.jsonl"),
    }
    ids = [json.loads(line)["id"] for line in lines]
    # the reference for deletions: the catalog without items 10..19, built from scratch
    build_index(root / "model", parts["rest"], root / "rest-exact", backend="exact", num_workers=0)
    return root, manifest, parts, ids


def results(searcher: Searcher, item_ids: list[str]) -> list[list[tuple[str, float]]]:
    out = []
    for item_id in item_ids:
        for method, add, remove, must, must_not in METHODS:
            q = Query(item_id=item_id, add=add, remove=remove, must=must, must_not=must_not,
                      method=method, k=K)  # fmt: skip
            out.append([(r.id, r.score) for r in searcher.search(q).results])
    return out


def assert_same(got, want, *, exact: bool = True) -> None:
    """Same ids in the same order (scores within float noise); faiss: recall@K >= 0.99."""
    if exact:
        for g, w in zip(got, want, strict=True):
            assert [i for i, _ in g] == [i for i, _ in w]
            np.testing.assert_allclose([s for _, s in g], [s for _, s in w], atol=1e-5)
    else:
        hits = sum(
            len({i for i, _ in g} & {i for i, _ in w}) for g, w in zip(got, want, strict=True)
        )
        assert hits / sum(len(w) for w in want) >= 0.99


@pytest.mark.parametrize("backend", ["exact", "faiss"])
def test_add_equals_a_full_build(setup, tmp_path, backend):
    root, _, parts, ids = setup
    out = tmp_path / "index"
    build_index(root / "model", parts["head"], out, backend=backend, num_workers=0)
    result = add_items(out, parts["tail"], num_workers=0)
    assert (result.added, result.count, result.live) == (20, 60, 60)
    index = Index.load(out)
    assert index.count == 60 and index.manifest["live"] == 60
    assert index.manifest["history"][-1]["op"] == "add"
    assert (
        index.manifest["backend"]["name"] == Index.load(root / backend).manifest["backend"]["name"]
    )
    if backend == "faiss":
        assert index.backend.index.ntotal == 60
    index.close()
    got = results(Searcher.load(out), ids[::7])
    want = results(Searcher.load(root / "exact"), ids[::7])
    assert_same(got, want, exact=backend == "exact")


def test_add_refuses_duplicate_ids_and_another_model(setup, tmp_path):
    root, _, parts, _ = setup
    out = tmp_path / "index"
    build_index(root / "model", parts["head"], out, backend="exact", num_workers=0)
    with pytest.raises(IndexUpdateError, match=r"5 item id\(s\) .* already in the index"):
        add_items(out, parts["dup"], num_workers=0)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["model_fingerprint"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="was built with model 000000000000"):
        add_items(out, parts["tail"], num_workers=0)
    assert Index.load(out).count == 40


def test_a_failed_add_leaves_the_old_index(setup, tmp_path, monkeypatch):
    root, _, parts, _ = setup
    out = tmp_path / "index"
    build_index(root / "model", parts["head"], out, backend="faiss", num_workers=0)
    before = (out / "manifest.json").read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(update_module, "_extend_backend", boom)
    with pytest.raises(OSError, match="disk full"):
        add_items(out, parts["tail"], num_workers=0)
    assert (out / "manifest.json").read_text() == before
    assert Index.load(out).count == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.lock", "index"]


@pytest.mark.parametrize("backend", ["exact", "faiss"])
def test_deleted_items_are_never_returned(setup, tmp_path, backend):
    root, _, _, ids = setup
    out = tmp_path / "index"
    shutil.copytree(root / backend, out)
    gone = ids[10:20]
    result = delete_items(out, [*gone, "no-such-item"])
    assert result.deleted == 10 and result.unknown == ["no-such-item"] and result.live == 50
    index = Index.load(out)
    assert (index.count, index.live_count, int(index.deleted.sum())) == (60, 50, 10)
    assert index.row_of(gone[0]) is None
    index.close()
    searcher = Searcher.load(out)
    kept = [i for i in ids if i not in gone]
    got = results(searcher, kept[::6])
    assert not {i for r in got for i, _ in r} & set(gone)
    want = results(Searcher.load(root / "rest-exact"), kept[::6])
    assert_same(got, want, exact=backend == "exact")
    # every item deleted but one: k results can no longer be found
    delete_items(out, kept[1:])
    last = Searcher.load(out).search(Query(item_id=kept[0], method="combined", add=["red"], k=K))
    assert [r.id for r in last.results] == [kept[0]]


def test_delete_then_add_back(setup, tmp_path):
    root, _, parts, ids = setup
    out = tmp_path / "index"
    shutil.copytree(root / "faiss", out)
    delete_items(out, ids[40:])
    result = add_items(out, parts["tail"], num_workers=0)  # the same ids, live again
    assert (result.count, result.live) == (80, 60)
    searcher = Searcher.load(out)
    assert searcher.index.row_of(ids[45]) >= 60
    got = results(searcher, ids[::11])
    assert_same(got, results(Searcher.load(root / "exact"), ids[::11]), exact=False)


@pytest.mark.parametrize("backend", ["exact", "faiss"])
def test_shards_merge_into_the_full_index(setup, tmp_path, backend):
    root, manifest, _, ids = setup
    shards = []
    for i in range(3):
        shard = tmp_path / f"shard-{i}"
        build_index(root / "model", manifest, shard, backend="exact", num_workers=0,
                    shard=f"{i}/3")  # fmt: skip
        assert Index.load(shard).manifest["shard"]["index"] == i
        shards.append(shard)
    assert sum(Index.load(s).count for s in shards) == 60
    out = tmp_path / "merged"
    result = merge_indexes(out, shards, backend=backend)
    assert result.count == 60
    merged = Index.load(out)
    full = Index.load(root / "exact")
    assert [merged.item(r).id for r in range(60)] == ids
    np.testing.assert_allclose(merged.vectors, full.vectors, atol=1e-6)
    assert_same(
        results(Searcher.load(out), ids[::9]),
        results(Searcher.load(root / "exact"), ids[::9]),
        exact=backend == "exact",
    )

    with pytest.raises(IndexUpdateError, match="missing 1/3"):
        merge_indexes(tmp_path / "m2", [shards[0], shards[2]], backend="exact")
    with pytest.raises(IndexUpdateError, match="is in both"):
        merge_indexes(tmp_path / "m3", [root / "exact", shards[1]], backend="exact")
    with pytest.raises(IndexUpdateError, match="is one of the shards"):
        merge_indexes(shards[0], shards, backend="exact")


def test_merge_refuses_another_model_and_skips_deleted(setup, tmp_path):
    root, _, parts, ids = setup
    a, b = tmp_path / "a", tmp_path / "b"
    build_index(root / "model", parts["head"], a, backend="exact", num_workers=0)
    build_index(root / "model", parts["tail"], b, backend="exact", num_workers=0)
    delete_items(a, ids[10:20])
    merged = merge_indexes(tmp_path / "m", [a, b], backend="faiss")
    assert merged.count == 50
    index = Index.load(tmp_path / "m")
    assert index.n_deleted == 0 and index.row_of(ids[15]) is None
    assert index.manifest["look_version"] == LOOK_VERSIONS["pixel-shading"]
    manifest = json.loads((b / "manifest.json").read_text())
    (b / "manifest.json").write_text(json.dumps({**manifest, "look_version": 1}))
    with pytest.raises(IndexMismatchError, match=r"look_version differs\); every shard"):
        merge_indexes(tmp_path / "m3", [a, b], backend="exact")
    manifest["model_fingerprint"] = "1" * 64
    (b / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="another model"):
        merge_indexes(tmp_path / "m4", [a, b], backend="exact")


@pytest.mark.parametrize("fusion", [TextFusion("blend", 0.5), TextFusion("log-odds", 2.0)])
def test_add_and_merge_keep_the_text_fusion(setup, tmp_path, fusion):
    root, manifest, parts, _ = setup
    a, b = tmp_path / "a", tmp_path / "b"
    build_index(root / "model", parts["head"], a, backend="exact", num_workers=0, fusion=fusion)
    build_index(root / "model", parts["tail"], b, backend="exact", num_workers=0)
    assert TextFusion.from_manifest(Index.load(a).manifest) == fusion
    assert Index.load(b).manifest["metadata_fusion"] == "log-odds"  # the default
    assert Index.load(b).manifest["metadata_weight"] == 3.0
    with pytest.raises(IndexUpdateError, match=f"by {fusion.describe()}, .* by log-odds 3; index"):
        merge_indexes(tmp_path / "m", [b, a], backend="exact")
    # items added to an index are fused as its own were: the same p as a full build
    add_items(a, parts["tail"], num_workers=0)
    assert Index.load(a).manifest["look_version"] == LOOK_VERSIONS["pixel-shading"]
    full = tmp_path / "full"
    build_index(root / "model", manifest, full, backend="exact", num_workers=0, fusion=fusion)
    added, built = Index.load(a), Index.load(full)
    assert TextFusion.from_manifest(added.manifest) == fusion
    np.testing.assert_allclose(
        np.asarray(added.attributes, np.float32),
        np.asarray(built.attributes, np.float32),
        atol=2e-3,
    )


def test_cli_add_delete_merge(setup, tmp_path):
    root, manifest, parts, ids = setup
    runner = CliRunner()
    out = tmp_path / "index"
    build_index(root / "model", parts["head"], out, backend="faiss", num_workers=0)
    r = runner.invoke(cli, ["index", "add", "--index", str(out), "--catalog", str(parts["tail"]),
                            "--workers", "0", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "added 20 items" in r.output and "60 items now" in r.output
    r = runner.invoke(cli, ["index", "add", "--index", str(out), "--catalog", str(parts["dup"]),
                            "--workers", "0", "--quiet"])  # fmt: skip
    assert r.exit_code == 1 and "already in the index" in r.output

    ids_file = tmp_path / "gone.txt"
    ids_file.write_text(f'# to delete\n{ids[3]}\n\n{{"id": "{ids[4]}"}}\nnope\n')
    assert read_ids_file(ids_file) == [ids[3], ids[4], "nope"]
    r = runner.invoke(cli, ["index", "delete", "--index", str(out), "--ids", str(ids_file)])
    assert r.exit_code == 0, r.output
    assert "deleted 2 items" in r.output and "58 items left" in r.output
    assert "1 id(s) not in the index: nope" in r.output
    r = runner.invoke(cli, ["index", "delete", "--index", str(out), "--ids", str(ids_file)])
    assert r.exit_code == 1 and "none of the 3 ids" in r.output
    r = runner.invoke(cli, ["search", "--index", str(out), "--item", ids[3], "--method", "visual"])
    assert r.exit_code == 1 and "no item with id" in r.output

    for i in range(2):
        args = ["index", "--model", str(root / "model"), "--catalog", str(manifest), "--out",
                str(tmp_path / f"s{i}"), "--shard", f"{i}/2", "--backend", "exact",
                "--workers", "0", "--quiet"]  # fmt: skip
        r = runner.invoke(cli, args)
        assert r.exit_code == 0, r.output
        assert "indexed 30 items" in r.output
    r = runner.invoke(cli, ["index", "merge", "--out", str(tmp_path / "m"), str(tmp_path / "s0"),
                            str(tmp_path / "s1"), "--backend", "faiss", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "merged 2 indexes (60 items)" in r.output
    bad = ["index", "--model", str(root / "model"), "--catalog", str(manifest), "--out",
           str(tmp_path / "x"), "--workers", "0"]  # fmt: skip
    r = runner.invoke(cli, [*bad, "--shard", "2/2"])
    assert r.exit_code == 1 and "0 <= I < N" in r.output
    r = runner.invoke(cli, [*bad, "--backend", "milvus"])
    assert r.exit_code == 2 and "needs --milvus-uri" in r.output
    r = runner.invoke(cli, [*bad, "--milvus-uri", "http://127.0.0.1:1"])
    assert r.exit_code == 2 and "need --backend milvus" in r.output
