"""Vocabulary: min_count cutoff, deterministic order, lookups, closest words, JSON round trip."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stylesearch.text import Vocabulary, scaled_min_count

BAGS = [
    ["red", "dress", "red"],  # repeats inside one item count once
    ["red", "shirt", "striped"],
    ["navy", "dress", "striped"],
    ["red", "dress", "stripe"],
    ["navy", "skirt"],
]


@pytest.fixture()
def vocab() -> Vocabulary:
    return Vocabulary.build(BAGS, min_count=2)


@pytest.mark.parametrize(
    ("n_items", "expected"),
    [(0, 2), (10, 2), (2499, 2), (2501, 3), (5000, 5), (500_000, 500)],
)
def test_scaled_min_count(n_items: int, expected: int) -> None:
    assert scaled_min_count(n_items) == expected


def test_scaled_min_count_rejects_negative() -> None:
    with pytest.raises(ValueError):
        scaled_min_count(-1)


def test_build_cutoff_and_order(vocab: Vocabulary) -> None:
    # document frequencies: red 3, dress 3, navy 2, striped 2, shirt/skirt/stripe 1
    assert vocab.words == ["dress", "red", "navy", "striped"]  # count desc, then alphabetical
    assert vocab.counts == [3, 3, 2, 2]
    assert vocab.n_items == 5
    assert vocab.min_count == 2
    assert Vocabulary.build(BAGS, min_count=3).words == ["dress", "red"]
    assert Vocabulary.build(BAGS, min_count=1).words[-3:] == ["shirt", "skirt", "stripe"]


def test_build_is_deterministic_under_permutation() -> None:
    shuffled = [list(reversed(b)) for b in reversed(BAGS)]
    a = Vocabulary.build(BAGS, min_count=1)
    b = Vocabulary.build(shuffled, min_count=1)
    assert a == b and a.fingerprint() == b.fingerprint()


def test_build_max_words_and_generators() -> None:
    capped = Vocabulary.build((iter(b) for b in BAGS), min_count=1, max_words=3)
    assert capped.words == ["dress", "red", "navy"]
    assert capped.n_items == 5


@pytest.mark.parametrize(
    "kwargs",
    [{"min_count": 0}, {"min_count": 2.5}, {"min_count": 2, "max_words": 0}, {"min_count": True}],
)
def test_build_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Vocabulary.build(BAGS, **kwargs)


def test_build_rejects_string_bags() -> None:
    with pytest.raises(TypeError):
        Vocabulary.build(["red dress"], min_count=1)


def test_container_protocol(vocab: Vocabulary) -> None:
    assert len(vocab) == 4
    assert "red" in vocab and "skirt" not in vocab and 3 not in vocab
    assert list(vocab) == vocab.words
    assert vocab.get("navy") == 2 and vocab.get("skirt") is None
    assert vocab.index("striped") == 3
    assert "4 words" in repr(vocab)


def test_index_error_suggests(vocab: Vocabulary) -> None:
    with pytest.raises(KeyError, match="closest: striped"):
        vocab.index("stripes")


def test_encode_decode(vocab: Vocabulary) -> None:
    ids = vocab.encode(["striped", "unknown", "red", "striped", "dress"])
    assert ids == [3, 1, 0]
    assert vocab.decode(ids) == ["striped", "red", "dress"]
    assert vocab.decode(np.array(ids, dtype=np.int64)) == ["striped", "red", "dress"]
    assert vocab.encode([]) == []
    for bad in (4, -1):
        with pytest.raises(IndexError):
            vocab.decode([bad])


def test_closest() -> None:
    bags = [["striped", "stripe", "dress", "sleeve", "sleeveless"]] * 2 + [["striped", "sleeve"]]
    v = Vocabulary.build(bags, min_count=1)
    near = v.closest("stripes")
    assert near[:2] == ["stripe", "striped"]  # most similar first
    assert "dress" not in near
    assert v.closest("Stripes", n=1) == ["stripe"]
    # prefix / substring matches after the difflib ones
    assert set(v.closest("sleev")) == {"sleeve", "sleeveless"}
    assert v.closest("sleeveless-dress")[:1] == ["sleeveless"]
    assert v.closest("zzz") == [] and v.closest("") == [] and v.closest("dress", n=0) == []


def test_closest_ties_go_to_frequent_word() -> None:
    v = Vocabulary.build([["cat", "bat"], ["bat"]], min_count=1)  # bat more frequent
    assert v.closest("hat") == ["bat", "cat"]


def test_fingerprint(vocab: Vocabulary) -> None:
    expected = hashlib.sha256(b"dress\nred\nnavy\nstriped").hexdigest()[:16]
    assert vocab.fingerprint() == expected
    assert len(expected) == 16 and int(expected, 16) >= 0
    same_words = Vocabulary(vocab.words, [9, 9, 9, 9], 100, 1)
    assert same_words.fingerprint() == vocab.fingerprint()  # counts excluded
    reordered = Vocabulary(list(reversed(vocab.words)), vocab.counts, 5, 2)
    assert reordered.fingerprint() != vocab.fingerprint()


def test_save_load_roundtrip(vocab: Vocabulary, tmp_path: Path) -> None:
    path = vocab.save(tmp_path / "sub" / "vocab.json")
    data = json.loads(path.read_text("utf-8"))
    assert data == {
        "format_version": 1,
        "words": ["dress", "red", "navy", "striped"],
        "counts": [3, 3, 2, 2],
        "n_items": 5,
        "min_count": 2,
    }
    loaded = Vocabulary.load(path)
    assert loaded == vocab
    assert loaded.fingerprint() == vocab.fingerprint()
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
    assert not list(tmp_path.glob("sub/*.tmp"))


def _good() -> dict:
    return {
        "format_version": 1,
        "words": ["a1", "b2"],
        "counts": [2, 1],
        "n_items": 3,
        "min_count": 1,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"counts": [2]}, "lengths must match"),
        ({"words": ["a1", "a1"]}, "duplicate word"),
        ({"format_version": 2}, "format_version"),
        ({"words": ["a1", 5]}, "non-empty strings"),
        ({"words": ["a1", ""]}, "non-empty strings"),
        ({"counts": [2, -1]}, "integers >= 0"),
        ({"counts": [2, 1.5]}, "integers >= 0"),
        ({"n_items": "3"}, "n_items"),
        ({"min_count": 0}, "min_count"),
        ({"extra": 1}, "unknown key"),
    ],
)
def test_malformed_dict_rejected(change: dict, message: str, tmp_path: Path) -> None:
    data = {**_good(), **change}
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ValueError, match=message) as info:
        Vocabulary.load(path)
    assert str(path) in str(info.value)


def test_malformed_files_rejected(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    path.write_text("{not json", "utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        Vocabulary.load(path)
    path.write_text("[1, 2]", "utf-8")
    with pytest.raises(ValueError, match="JSON object"):
        Vocabulary.load(path)
    data = _good()
    del data["counts"]
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ValueError, match="missing key"):
        Vocabulary.load(path)


_words = st.text(alphabet="abcdefgh", min_size=1, max_size=4)


@settings(max_examples=50, deadline=None)
@given(bags=st.lists(st.lists(_words, max_size=6), max_size=12), min_count=st.integers(1, 3))
def test_build_properties(bags: list[list[str]], min_count: int) -> None:
    v = Vocabulary.build(bags, min_count=min_count)
    for word, count in zip(v.words, v.counts, strict=True):
        assert count == sum(word in bag for bag in bags) >= min_count
    keys = [(-c, w) for w, c in zip(v.words, v.counts, strict=True)]
    assert keys == sorted(keys)
    assert Vocabulary.from_dict(json.loads(json.dumps(v.to_dict()))) == v
    assert v.decode(v.encode(v.words)) == v.words
