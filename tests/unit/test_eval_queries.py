"""Benchmark query building, writing and reading."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from stylesearch.catalog.manifest import CatalogItem
from stylesearch.evaluation.queries import (
    QueryFileError,
    build_queries,
    load_queries,
    query_part,
    write_queries,
)

COLOURS = ["red", "blue", "green", "black"]
PATTERNS = ["solid", "striped", "dotted"]
CATEGORIES = ["dress", "shirt", "bag"]


def _catalog(tmp_path: Path, n: int = 200) -> tuple[list[CatalogItem], dict[str, dict[str, str]]]:
    items, truth = [], {}
    (tmp_path / "img").mkdir(exist_ok=True)
    for i in range(n):
        image = tmp_path / "img" / f"q{i}.png"
        image.write_bytes(b"png")
        items.append(CatalogItem(id=f"query-{i:04d}", image=image, title=f"item {i}"))
        truth[f"query-{i:04d}"] = {
            "colour": COLOURS[i % 4],
            "pattern": PATTERNS[i % 3],
            "category": CATEGORIES[i % 3 if i % 7 else 0],
        }
    return items, truth


def test_requirements_follow_the_kind(tmp_path: Path) -> None:
    items, truth = _catalog(tmp_path)
    queries = build_queries(items, truth, part="test", seed=1)
    assert queries
    for q in queries:
        have = truth[q.item_id][q.group]
        if q.type == "add":
            assert q.remove == () and len(q.add) == 1 and q.add[0] != have
        elif q.type == "remove":
            assert q.add == () and q.remove == (have,)
        else:
            assert q.remove == (have,) and len(q.add) == 1 and q.add[0] != have
        values = {t[q.group] for t in truth.values()}
        assert set(q.add) | set(q.remove) <= values


def test_balanced_mix(tmp_path: Path) -> None:
    items, truth = _catalog(tmp_path)
    queries = build_queries(items, truth, part="validation", n=150, seed=0)
    kinds = Counter(q.type for q in queries)
    assert kinds == {"add": 50, "remove": 50, "replace": 50}
    groups = Counter((q.type, q.group) for q in queries)
    for kind in ("add", "remove", "replace"):
        assert groups[(kind, "colour")] == 20
        assert groups[(kind, "pattern")] == 20
        assert groups[(kind, "category")] == 10


def test_validation_and_test_never_share_an_item(tmp_path: Path) -> None:
    items, truth = _catalog(tmp_path)
    val = build_queries(items, truth, part="validation", seed=0)
    test = build_queries(items, truth, part="test", seed=5)
    assert {q.item_id for q in val}.isdisjoint({q.item_id for q in test})
    assert len(val) + len(test) == len(items)  # default: one query per item
    assert all(query_part(q.item_id) == "test" for q in test)


def test_deterministic_per_seed(tmp_path: Path) -> None:
    items, truth = _catalog(tmp_path)
    a = build_queries(items, truth, seed=3)
    assert a == build_queries(items, truth, seed=3)
    assert a != build_queries(items, truth, seed=4)


def test_bad_inputs(tmp_path: Path) -> None:
    items, truth = _catalog(tmp_path)
    with pytest.raises(ValueError, match="distinct value"):
        build_queries(items, truth, group_shares={"material": 1.0})
    with pytest.raises(ValueError, match="no query item"):
        build_queries(items, {}, part="test")
    with pytest.raises(ValueError, match="part"):
        build_queries(items, truth, part="train")


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    items, truth = _catalog(tmp_path)
    queries = build_queries(items, truth, n=30)
    out = write_queries(queries, tmp_path / "q" / "test.jsonl")
    row = json.loads(out.read_text().splitlines()[0])
    assert set(row) == {"query_id", "image", "item_id", "add", "remove", "type", "group"}
    assert row["image"].startswith("../img/")  # relative to the queries file
    assert load_queries(out) == queries


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ('{"query_id": "a", "image": "x.png", "item_id": "i", "add": ["red"], "type": "add"}',
         "not found"),
        ('{"query_id": "a", "image": "img/q0.png", "item_id": "i", "type": "add"}',
         "at least one word"),
        ('{"query_id": "a", "image": "img/q0.png", "item_id": "i", "add": ["red"], "type": "x"}',
         "type must be"),
        ('{"query_id": "a", "image": "img/q0.png", "item_id": "i", "add": "red", "type": "add"}',
         "list of non-empty strings"),
    ],
)  # fmt: skip
def test_load_rejects_bad_lines_with_the_line_number(
    tmp_path: Path, line: str, message: str
) -> None:
    _catalog(tmp_path, 2)
    path = tmp_path / "q.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(QueryFileError, match=message) as err:
        load_queries(path)
    assert "q.jsonl:1" in str(err.value)


def test_load_missing_file_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(QueryFileError, match="build-queries"):
        load_queries(tmp_path / "none.jsonl")
