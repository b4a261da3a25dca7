"""The index folder: round trip, derived files, atomic replacement."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from stylesearch.index.postings import csr_from_bags, invert_csr
from stylesearch.index.store import (
    FORMAT_VERSION,
    Index,
    IndexFormatError,
    IndexMismatchError,
    IndexWriter,
)
from stylesearch.testing.index_arrays import write_index_arrays


def _arrays(n=6, dim=4, vocab=5, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    attributes = rng.random((n, vocab)).astype(np.float16)
    bags = [[i % vocab, (i + 1) % vocab] for i in range(n)]
    return vectors, attributes, csr_from_bags(bags)


def test_csr_and_postings():
    offsets, words = csr_from_bags([[2, 0], [], [0]])
    assert offsets.tolist() == [0, 2, 2, 3] and words.tolist() == [2, 0, 0]
    p_off, p_rows = invert_csr(offsets, words, 4)
    assert p_off.tolist() == [0, 2, 2, 3, 3]
    assert p_rows.tolist() == [0, 2, 0]  # word 0 -> rows 0, 2; word 2 -> row 0


def test_round_trip(tmp_path):
    vectors, attributes, meta = _arrays()
    write_index_arrays(
        tmp_path / "idx",
        vectors,
        attributes,
        metadata=meta,
        titles=[f"title {i}" for i in range(6)],
        manifest={"model_fingerprint": "abc"},
    )
    index = Index.load(tmp_path / "idx")
    assert index.count == 6 and index.dimension == 4 and index.vocab_size == 5
    assert index.manifest["model_fingerprint"] == "abc"
    assert index.manifest["backend"] == {"name": "exact", "params": {}}
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(index.attributes, attributes)
    assert index.attributes.flags.f_contiguous  # a word's column is contiguous
    for w in range(attributes.shape[1]):  # sorted attribute lists: a prefix of the column order
        rows, values, floor = index.attribute_list(w)
        col = attributes[:, w].astype(np.float32)
        np.testing.assert_array_equal(values, attributes[rows, w])
        assert np.all(np.diff(values.astype(np.float32)) <= 0)
        left_out = np.setdiff1d(np.arange(6), rows)
        assert floor == (col[left_out].max() if left_out.size else 0.0)
    np.testing.assert_array_equal(index.attr_max, attributes.astype(np.float32).max(axis=0))
    assert index.item(3).title == "title 3" and index.item(3).id == "item-3"
    assert index.row_of("item-4") == 4 and index.row_of("nope") is None
    assert index.metadata_word_ids(1).tolist() == [1, 2]
    assert index.rows_with_word(0).tolist() == [0, 4, 5]


def test_an_interrupted_build_leaves_the_old_index_readable(tmp_path):
    out = tmp_path / "idx"
    vectors, attributes, meta = _arrays()
    write_index_arrays(out, vectors, attributes, metadata=meta, manifest={"build": "old"})
    with pytest.raises(RuntimeError, match="boom"), IndexWriter(out, n=6, dim=4, vocab_size=5) as w:
        w.vectors[:] = 1.0
        raise RuntimeError("boom")
    index = Index.load(out)
    assert index.manifest["build"] == "old"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".idx.lock", "idx"]  # no temporary folder left, only the writer lock file


def test_a_failing_finish_leaves_the_old_index(tmp_path):
    out = tmp_path / "idx"
    vectors, attributes, meta = _arrays()
    write_index_arrays(out, vectors, attributes, metadata=meta, manifest={"build": "old"})
    bad = attributes.astype(np.float32) + 2  # probabilities outside [0, 1]
    with pytest.raises(ValueError, match="outside"):
        write_index_arrays(out, vectors, bad, metadata=meta, manifest={"build": "new"})
    assert Index.load(out).manifest["build"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".idx.lock", "idx"]


def test_a_rebuild_replaces_the_index(tmp_path):
    out = tmp_path / "idx"
    vectors, attributes, meta = _arrays()
    write_index_arrays(out, vectors, attributes, metadata=meta, manifest={"build": "old"})
    write_index_arrays(out, vectors, attributes, metadata=meta, manifest={"build": "new"})
    assert Index.load(out).manifest["build"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".idx.lock", "idx"]


def test_refuses_to_replace_a_folder_that_is_not_an_index(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(IndexFormatError, match="not an index folder"):
        IndexWriter(out, n=1, dim=1, vocab_size=1)
    assert (out / "precious.txt").read_text() == "keep me"


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(IndexFormatError, match="not a stylesearch index"):
        Index.load(tmp_path)
    vectors, attributes, meta = _arrays()
    write_index_arrays(tmp_path / "idx", vectors, attributes, metadata=meta)
    (tmp_path / "idx" / "attr_postings_rows.npy").unlink()
    with pytest.raises(IndexFormatError, match="missing attr_postings_rows.npy"):
        Index.load(tmp_path / "idx")
    manifest = tmp_path / "idx" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(IndexFormatError, match="rebuild"):
        Index.load(tmp_path / "idx")


def test_an_index_without_its_coarse_partition_is_refused(tmp_path):
    """Format 3 needs the coarse partition: an index lacking it is rebuilt, not searched."""
    vectors, attributes, meta = _arrays()
    write_index_arrays(tmp_path / "idx", vectors, attributes, metadata=meta)
    manifest = tmp_path / "idx" / "manifest.json"
    data = json.loads(manifest.read_text())
    assert data["format_version"] == FORMAT_VERSION == 3 and "cosine_profile" not in data
    del data["coarse"]
    manifest.write_text(json.dumps(data))
    with pytest.raises(IndexFormatError, match="rebuild the index with `stylesearch index`"):
        Index.load(tmp_path / "idx")
    data["format_version"] = 2  # an older format, with or without its partition
    manifest.write_text(json.dumps(data))
    with pytest.raises(IndexFormatError, match="rebuild the index with `stylesearch index`"):
        Index.load(tmp_path / "idx")


def test_check_model_refuses_another_model_or_a_model_without_vocabulary(tmp_path):
    vectors, attributes, meta = _arrays()
    write_index_arrays(
        tmp_path / "idx", vectors, attributes, metadata=meta,
        manifest={"model_fingerprint": "abc", "vocab_fingerprint": "v1"},
    )  # fmt: skip
    index = Index.load(tmp_path / "idx")
    vocab = SimpleNamespace(fingerprint=lambda: "v1")
    same = SimpleNamespace(fingerprint=lambda: "abc", vocab=vocab, index_dim=4)
    index.check_model(same)
    with pytest.raises(IndexMismatchError, match="was built with model abc"):
        index.check_model(SimpleNamespace(fingerprint=lambda: "xyz", vocab=vocab, index_dim=4))
    with pytest.raises(IndexMismatchError, match="vocabulary v1 but the model's is None"):
        index.check_model(SimpleNamespace(fingerprint=lambda: "abc", vocab=None, index_dim=4))
    with pytest.raises(IndexMismatchError, match="dimension 4, the model 8"):
        index.check_model(SimpleNamespace(fingerprint=lambda: "abc", vocab=vocab, index_dim=8))
    index.close()


@pytest.mark.parametrize("built", [None, 2])
def test_check_model_refuses_looks_read_at_another_version(tmp_path, built):
    vectors, attributes, meta = _arrays()
    manifest = {"model_fingerprint": "abc", "vocab_fingerprint": "v1", "model_dir": "/m",
                "catalog": "/c.jsonl", "look_version": built}  # fmt: skip
    write_index_arrays(tmp_path / "idx", vectors, attributes, metadata=meta, manifest=manifest)
    index = Index.load(tmp_path / "idx")
    vocab = SimpleNamespace(fingerprint=lambda: "v1")

    def model(look):
        return SimpleNamespace(fingerprint=lambda: "abc", vocab=vocab, index_dim=4, look=look)

    index.check_model(model(None))  # a model without a look has nothing to compare
    if built is not None:
        index.check_model(model(SimpleNamespace(kind="shading", version=built)))
    read = "before looks had versions" if built is None else "at version 2"
    with pytest.raises(IndexMismatchError, match=f"looks read {read}.*'pixel-shading' look at "
                       "version 3.*stylesearch index --model /m --catalog /c.jsonl"):  # fmt: skip
        index.check_model(model(SimpleNamespace(kind="pixel-shading", version=3)))
    index.close()
