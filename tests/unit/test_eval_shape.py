"""The shape judge's vectors: source images named by the truth file, centred per split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stylesearch.catalog.fashion_mnist import DemoSourceMissing, write_idx
from stylesearch.evaluation.judges import Judge, expected_category, judge_queries
from stylesearch.evaluation.queries import BenchmarkQuery
from stylesearch.evaluation.shape import load_shape_vectors, source_folder


def _fake_source(folder: Path, images: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, imgs in images.items():
        write_idx(folder / f"{name}-images-idx3-ubyte.gz", imgs)
        write_idx(folder / f"{name}-labels-idx1-ubyte.gz", np.zeros(len(imgs), np.uint8))
    return folder


def _truth(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[Path, Path]:
    train = np.zeros((3, 2, 2), np.uint8)
    train[0] = [[4, 0], [0, 0]]
    train[1] = [[0, 4], [0, 0]]
    train[2] = [[2, 2], [0, 0]]
    t10k = np.zeros((1, 2, 2), np.uint8)
    t10k[0] = [[6, 0], [0, 2]]
    src = _fake_source(tmp_path / "fmnist", {"train": train, "t10k": t10k})
    rows = [
        {"id": "b0", "split": "base", "source": "train", "source_index": 0},
        {"id": "b1", "split": "base", "source": "train", "source_index": 1},
        {"id": "q0", "split": "query", "source": "t10k", "source_index": 0},
        {"id": "q1", "split": "query", "source": "train", "source_index": 2},
    ]
    (tmp_path / "build.json").write_text(json.dumps({"config": {"source": str(src)}}))
    return _truth(tmp_path / "truth.jsonl", rows), src


def test_vectors_are_the_source_pixels_centred_on_their_splits_mean(catalog) -> None:
    truth, _ = catalog
    shape = load_shape_vectors(truth, ["b1", "b0"], ["q0"])
    assert shape is not None
    # base mean (4+0)/2, (0+4)/2 = [2, 2, 0, 0]; b1 - mean = [-2, 2, 0, 0]
    s = np.sqrt(8.0)
    np.testing.assert_allclose(shape.base, [[-2 / s, 2 / s, 0, 0], [2 / s, -2 / s, 0, 0]])
    # query mean over q0 and q1: [4, 1, 0, 1]; q0 - mean = [2, -1, 0, 1]
    np.testing.assert_allclose(shape.queries[0], np.array([2.0, -1.0, 0.0, 1.0]) / np.sqrt(6))


def test_no_judge_when_an_item_has_no_source(catalog, tmp_path: Path) -> None:
    truth, src = catalog
    assert load_shape_vectors(truth, ["b0", "unknown"], ["q0"]) is None
    plain = _truth(tmp_path / "plain.jsonl", [{"id": "b0", "colour": "red"}])
    assert load_shape_vectors(plain, ["b0"], [], source_dir=src) is None


def test_source_folder_comes_from_build_json_and_must_exist(catalog, tmp_path: Path) -> None:
    truth, src = catalog
    assert source_folder(truth) == src
    with pytest.raises(DemoSourceMissing, match="dataset-fashion-mnist"):
        load_shape_vectors(truth, ["b0"], ["q0"], source_dir=tmp_path / "nowhere")


def _query(group: str, add: tuple[str, ...], remove: tuple[str, ...]) -> BenchmarkQuery:
    return BenchmarkQuery("q", Path("q.png"), "item", add, remove, "add", group)


def test_expected_category() -> None:
    assert expected_category(_query("colour", ("red",), ()), "coat") == "coat"
    assert expected_category(_query("category", ("dress",), ("coat",)), "coat") == "dress"
    assert expected_category(_query("category", ("dress",), ()), "coat") == "dress"
    assert expected_category(_query("category", (), ("coat",)), "coat") is None


def test_kept_at_k_counts_the_groups_a_query_leaves_alone() -> None:
    groups = {
        "category": np.array(["dress", "dress", "coat", "dress"], dtype=object),
        "colour": np.array(["red", "blue", "red", "red"], dtype=object),
        "pattern": np.array(["solid", "striped", "solid", "dotted"], dtype=object),
        "split": np.array(["base"] * 4, dtype=object),  # not an attribute: no query changes it
    }
    judge = Judge(np.eye(4, 2), lambda word: np.array([], dtype=np.int64), groups, 4)
    truth = {
        "qa": {"category": "dress", "colour": "red", "pattern": "solid", "split": "query"},
        "qb": {"category": "coat", "colour": "blue", "pattern": "striped", "split": "query"},
    }
    queries = [
        BenchmarkQuery("q1", Path("a.png"), "qa", ("blue",), ("red",), "replace", "colour"),
        BenchmarkQuery("q2", Path("b.png"), "qb", (), ("striped",), "remove", None),
    ]
    judged = judge_queries(judge, queries, np.eye(2), None, truth, np.ones(4), 4)
    # q1 changes the colour and keeps its pattern; q2's group (pattern) is read off its words
    assert judged.kept == [{"pattern": "solid"}, {"colour": "blue"}]
    judged.record("s", "m", 0, np.array([0, 1, 2]), 1.0, ["b0", "b1", "b2"])
    judged.record("s", "m", 1, np.array([1, 3]), 1.0, ["b1", "b3"])
    # solid, striped, solid of K = 4 ranks; blue, red of 4 (missing ranks count as not kept)
    assert [r["kept"] for r in judged.per_query] == [0.5, 0.25]
    assert [r["category"] for r in judged.per_query] == [0.5, 0.0]
