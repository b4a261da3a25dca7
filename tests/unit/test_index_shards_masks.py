"""Pure pieces of issue 7: shard slices, row filters, the Milvus filter expression, ids files,
and tombstones in the index format (no model, no server)."""

from __future__ import annotations

import numpy as np
import pytest

from stylesearch.index.backends import HNSWParams, exact_search
from stylesearch.index.backends.milvus import (
    MilvusBackend,
    MilvusError,
    _probe,
    _rows_words,
    _words_expr,
)
from stylesearch.index.build import _parse_shard, shard_slice
from stylesearch.index.filters import RowFilter
from stylesearch.index.postings import csr_from_bags
from stylesearch.index.store import Index
from stylesearch.index.update import IndexUpdateError, delete_items, read_ids_file
from stylesearch.search.topk import hard_filter_mask, soft_filter_topk
from stylesearch.testing.index_arrays import write_index_arrays
from stylesearch.testing.oracle import exact_topk


@pytest.mark.parametrize("n", [1, 7, 60, 1001])
@pytest.mark.parametrize("parts", [1, 2, 3, 8])
def test_shards_cover_every_item_once(n, parts):
    slices = [shard_slice(n, i, parts) for i in range(parts)]
    assert slices[0][0] == 0 and slices[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False))
    sizes = [stop - start for start, stop in slices]
    assert max(sizes) - min(sizes) <= 1


def test_shard_spec_is_checked():
    assert _parse_shard("2/4") == (2, 4) and _parse_shard((0, 1)) == (0, 1)
    assert _parse_shard(None) is None
    for bad in ("4/4", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="I/N"):
            _parse_shard(bad)


def test_row_filter_of_words_keeps_its_words():
    mask = RowFilter.of_words(np.array([1, 0, 1]), [np.int64(3), 4], [7], must_any=[[5, 6]])
    assert mask.must == (3, 4) and mask.must_not == (7,) and mask.must_any == ((5, 6),)
    assert all(type(w) is int for w in (*mask.must, *mask.must_not, *mask.must_any[0]))
    assert mask.mask.dtype == bool and mask.count == 2 and mask.by_words
    # the rows unknown: read from the mask
    assert mask.rows is None
    assert mask.allowed_rows().tolist() == [0, 2] and mask.allowed_rows().dtype == np.int64
    with pytest.raises(AttributeError):
        mask.must = ()  # frozen


def test_row_filter_rows_known_are_used_as_they_are():
    known = RowFilter.of_words(np.array([True, False, True]), [3], [], rows=np.array([0, 2]))
    assert known.rows.dtype == np.int64 and known.allowed_rows() is known.rows
    assert known.count == 2


def test_row_filter_of_mask_has_no_words():
    plain = RowFilter.of_mask(np.array([0, 1, 1]))
    assert plain.mask.tolist() == [False, True, True] and not plain.by_words
    assert plain.must == plain.must_not == plain.must_any == () and plain.rows is None
    assert plain.count == 2 and plain.allowed_rows().tolist() == [1, 2]


def test_milvus_expression_and_word_lists():
    assert _words_expr((3, 4), ()) == "array_contains_all(words, [3, 4])"
    assert _words_expr((), (7,)) == "not array_contains_any(words, [7])"
    assert _words_expr((1,), (2, 5)) == (
        "array_contains_all(words, [1]) and not array_contains_any(words, [2, 5])"
    )
    assert _words_expr((), ()) == ""
    groups = RowFilter.of_words(np.ones(3, bool), [1], [2, 5], must_any=[(3, 4)])
    assert _words_expr(groups.must, groups.must_not, groups.must_any) == (
        "array_contains_all(words, [1]) and array_contains_any(words, [3, 4]) and not "
        "array_contains_any(words, [2, 5])"
    )
    offsets, words = csr_from_bags([[1, 2], [], [5]])
    assert _rows_words(offsets, words, np.array([12, 10, 11]), first=10) == [[5], [1, 2], []]


def test_milvus_sends_a_filters_words_and_asks_more_rows_for_a_mask(monkeypatch):
    """A filter by words goes to Milvus as its expression, k rows asked; a filter of a mask
    alone goes with no expression and more rows asked, the mask keeping the allowed ones."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    mask = np.zeros(200, bool)
    mask[::2] = True  # half the rows: above exact_below, so Milvus is asked
    backend = object.__new__(MilvusBackend)  # no server: only the search logic runs
    backend.vectors, backend.deleted, backend.hnsw = vectors, None, HNSWParams()
    sent = []

    def milvus_rows(q, limit, expr):  # a server that applies the words as the mask does
        sent.append((limit, expr))
        order = np.argsort(-(vectors @ q), kind="stable")
        return (order[mask[order]] if expr else order)[:limit]

    monkeypatch.setattr(backend, "_milvus_rows", milvus_rows)
    by_words = RowFilter.of_words(mask, [1], [2, 5], must_any=[(3, 4)])
    for allowed in (by_words, RowFilter.of_mask(mask)):
        _, got = backend.search(vectors[:1], 10, allowed)
        np.testing.assert_array_equal(got, exact_search(vectors, vectors[:1], 10, allowed)[1])
    assert sent[0] == (10, _words_expr(by_words.must, by_words.must_not, by_words.must_any))
    assert sent[1][1] == "" and sent[1][0] > 10


def test_milvus_address_probe_needs_a_listener_before_any_grpc_channel():
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        _probe(f"http://127.0.0.1:{port}")
        _probe(f"127.0.0.1:{port}")
    with pytest.raises(MilvusError, match=rf"nothing answers at 127.0.0.1:{port}"):
        _probe(f"http://127.0.0.1:{port}", timeout=2)
    _probe("http://milvus.internal")  # no explicit port: pymilvus's defaults decide
    with pytest.raises(MilvusError, match="invalid Milvus address"):
        _probe("http://127.0.0.1:99999999")


def test_ids_file(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text('# header\n a \n\n{"id": "b"}\n{"id": 3}\n')
    assert read_ids_file(path) == ["a", "b", "3"]
    path.write_text('{"sku": "x"}\n')
    with pytest.raises(IndexUpdateError, match=r"ids.txt:1: a JSON line without an \"id\""):
        read_ids_file(path)


@pytest.fixture
def small_index(tmp_path):
    rng = np.random.default_rng(0)
    n, dim, vocab = 400, 16, 6
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    attributes = rng.random((n, vocab)).astype(np.float32)
    bags = [[w for w in range(vocab) if rng.random() < 0.4] for _ in range(n)]
    out = write_index_arrays(tmp_path / "index", vectors, attributes,
                             metadata=csr_from_bags(bags), backend="faiss-hnsw")  # fmt: skip
    return out


def test_tombstones_are_applied_by_every_search_path(small_index):
    ids = [f"item-{i}" for i in range(0, 400, 3)]
    result = delete_items(small_index, ids)
    assert result.deleted == len(ids) and result.unknown == []
    index = Index.load(small_index)
    assert index.manifest["deleted"] == len(ids) and index.live_count == 400 - len(ids)
    live = index.live_mask()
    assert live is not None and not live[::3].any() and live[1::3].all()
    allowed = hard_filter_mask(index, [], [])
    assert isinstance(allowed, RowFilter) and np.array_equal(allowed.mask, live)
    with_words = hard_filter_mask(index, [1], [2])
    assert not with_words.mask[::3].any() and with_words.must == (1,)
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = rng.standard_normal(16).astype(np.float32)
        q /= np.linalg.norm(q)
        _, rows = index.backend.search(q[None], 10, allowed)
        assert live[rows[0]].all()
        got = soft_filter_topk(index, q, 10, [0], [3], allowed=allowed)
        want = exact_topk(index.vectors, index.attributes, q, 10, [0], [3], soft=True,
                                allowed=RowFilter.of_mask(live))  # fmt: skip
        assert got.rows.tolist() == want.rows.tolist()
    assert index.row_of("item-3") is None and index.row_of("item-4") == 4
    # the old files are shared (hard links), the tombstones are a new file
    assert (small_index / "vectors.npy").stat().st_nlink == 1  # the old folder is gone
    index.close()


def test_a_broken_tombstone_file_is_refused(small_index):
    delete_items(small_index, ["item-1"])
    np.save(small_index / "deleted.npy", np.zeros(400, bool))
    with pytest.raises(Exception, match="does not mark the manifest's 1 deleted"):
        Index.load(small_index)
