"""Benchmark queries (PAPER.md "Evaluation protocol"; format in ARCHITECTURE.md).

A query is a query item's image (an item that is never in the base catalog) plus requirements
taken from its clean attributes, of three kinds:

- ``add``: a wanted value of a group that the item does not have (``+striped`` on a solid item);
- ``remove``: an unwanted value the item has (``-striped`` on a striped item);
- ``replace``: remove the item's value and add another of the same group (``-red +blue``).

The mix is balanced: the three kinds in equal numbers, and within each kind the groups in fixed
shares (by default colour 40 %, pattern 40 %, category 20 %). Query items are split once, by a
hash of their id, into a **validation** half and a **test** half, so a validation set and a test
set never share an item whatever their seeds: tune on validation, report on test.

One JSON object per line::

    {"query_id": "test-0007", "image": "../catalog/query/images/000/query-000123.png",
     "item_id": "query-000123", "add": ["blue"], "remove": ["red"], "type": "replace",
     "group": "colour"}

``image`` is relative to the queries file; ``group`` (the attribute group the words come from)
is an addition to the ARCHITECTURE.md format that the truth-based T-nDCG uses.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stylesearch.catalog.manifest import CatalogItem
from stylesearch.errors import StylesearchError

__all__ = [
    "DEFAULT_GROUP_SHARES",
    "KINDS",
    "PARTS",
    "BenchmarkQuery",
    "QueryBuildError",
    "QueryFileError",
    "build_queries",
    "load_queries",
    "query_part",
    "write_queries",
]

KINDS = ("add", "remove", "replace")
PARTS = ("validation", "test")
DEFAULT_GROUP_SHARES: dict[str, float] = {"colour": 0.4, "pattern": 0.4, "category": 0.2}


class QueryFileError(StylesearchError, ValueError):
    """A benchmark queries file that cannot be used; the message names the line and the fix."""


class QueryBuildError(StylesearchError, ValueError):
    """Queries that cannot be built from these items, truth and settings; says what to check."""


@dataclass(frozen=True)
class BenchmarkQuery:
    query_id: str
    #: absolute path of the query image
    image: Path
    item_id: str
    add: tuple[str, ...]
    remove: tuple[str, ...]
    type: str
    #: the attribute group the words come from (None when unknown)
    group: str | None = None

    def to_json(self, relative_to: Path) -> dict[str, Any]:
        return {
            "query_id": self.query_id,
            "image": os.path.relpath(self.image, relative_to),
            "item_id": self.item_id,
            "add": list(self.add),
            "remove": list(self.remove),
            "type": self.type,
            "group": self.group,
        }


def query_part(item_id: str) -> str:
    """``"validation"`` or ``"test"``: the half an item belongs to (a stable hash of its id)."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return PARTS[digest[0] & 1]


def _slots(n: int, shares: Mapping[str, float], rng: np.random.Generator) -> list[tuple[str, str]]:
    """``n`` (kind, group) pairs: kinds in equal numbers, groups by ``shares`` within a kind."""
    groups = list(shares)
    weights = np.asarray([shares[g] for g in groups], dtype=np.float64)
    slots: list[tuple[str, str]] = []
    for k, kind in enumerate(KINDS):
        n_kind = n // len(KINDS) + (1 if k < n % len(KINDS) else 0)
        # largest-remainder apportionment of n_kind over the groups
        exact = weights / weights.sum() * n_kind
        counts = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - counts), kind="stable")[: n_kind - counts.sum()]:
            counts[i] += 1
        slots += [(kind, g) for g, c in zip(groups, counts, strict=True) for _ in range(c)]
    order = rng.permutation(len(slots))
    return [slots[i] for i in order]


def build_queries(
    items: Sequence[CatalogItem],
    truth: Mapping[str, Mapping[str, str]],
    *,
    part: str = "test",
    n: int | None = None,
    seed: int = 0,
    group_shares: Mapping[str, float] | None = None,
) -> list[BenchmarkQuery]:
    """Benchmark queries from the ``part`` half of ``items`` (see the module docstring).

    Args:
        items: the query catalog (items that are not in the base catalog).
        truth: item id -> {group: clean value} (``truth.jsonl``).
        part: ``"validation"`` or ``"test"``.
        n: number of queries; default one per item of the part (items are reused, with other
            requirements, when ``n`` is larger).
        seed: seeds which item gets which requirement.
        group_shares: group -> share of the queries within each kind.

    Raises:
        QueryBuildError: an unknown part, a group no item has in ``truth``, or no usable item.
    """
    if part not in PARTS:
        raise QueryBuildError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    shares = dict(DEFAULT_GROUP_SHARES if group_shares is None else group_shares)
    if not shares or any(v <= 0 for v in shares.values()):
        raise QueryBuildError(f"group shares must be positive, got {shares}")
    pool = [it for it in items if query_part(it.id) == part and it.id in truth]
    if not pool:
        raise QueryBuildError(
            f"no query item of the {part} half has a truth row: check that --truth belongs to "
            "--catalog (the query catalog, not the base catalog)"
        )
    values: dict[str, list[str]] = {}
    for group in shares:
        found = sorted({truth[it.id][group] for it in pool if group in truth[it.id]})
        if len(found) < 2:
            raise QueryBuildError(
                f"attribute group {group!r} has {len(found)} distinct value(s) in the truth of "
                "the query items; a query needs at least two (check the group names)"
            )
        values[group] = found
    n = len(pool) if n is None else n
    if n < 1:
        raise QueryBuildError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    queries: list[BenchmarkQuery] = []
    for i, (kind, group) in enumerate(_slots(n, shares, rng)):
        item = pool[int(order[i % len(pool)])]
        have = truth[item.id].get(group)
        others = [v for v in values[group] if v != have]
        other = others[int(rng.integers(len(others)))]
        if have is None and kind != "add":
            kind = "add"  # nothing to remove: the item has no value in this group
        add = (other,) if kind in ("add", "replace") else ()
        remove = (have,) if kind in ("remove", "replace") and have is not None else ()
        queries.append(
            BenchmarkQuery(
                query_id=f"{part}-{i:05d}",
                image=Path(item.image).absolute(),
                item_id=item.id,
                add=add,
                remove=remove,
                type=kind,
                group=group,
            )
        )
    return queries


def write_queries(queries: Sequence[BenchmarkQuery], out: str | Path) -> Path:
    """Write ``queries`` as JSONL (image paths relative to the file), atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = out.parent.absolute()
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w") as f:
        for q in queries:
            f.write(json.dumps(q.to_json(folder)) + "\n")
    tmp.replace(out)
    return out


def _words(row: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = row.get(key, [])
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise QueryFileError(f"{where}: {key!r} must be a list of non-empty strings")
    return tuple(value)


def load_queries(path: str | Path) -> list[BenchmarkQuery]:
    """Read a queries file; :class:`QueryFileError` names the first bad line and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise QueryFileError(
            f"{path}: no such queries file; build one with `stylesearch eval build-queries`"
        )
    folder = path.parent.absolute()
    queries: list[BenchmarkQuery] = []
    seen: set[str] = set()
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QueryFileError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise QueryFileError(f"{where}: each line must be a JSON object")
        for key in ("query_id", "image", "item_id"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise QueryFileError(f"{where}: {key!r} must be a non-empty string")
        if row["query_id"] in seen:
            raise QueryFileError(f"{where}: duplicate query_id {row['query_id']!r}")
        seen.add(row["query_id"])
        add, remove = _words(row, "add", where), _words(row, "remove", where)
        if not add and not remove:
            raise QueryFileError(f"{where}: a query needs at least one word in add or remove")
        kind = row.get("type")
        if kind not in KINDS:
            raise QueryFileError(f"{where}: type must be one of {', '.join(KINDS)}, got {kind!r}")
        image = Path(os.path.normpath(folder / row["image"]))
        if not image.is_file():
            raise QueryFileError(f"{where}: image {row['image']!r} not found (looked at {image})")
        group = row.get("group")
        queries.append(
            BenchmarkQuery(
                query_id=row["query_id"],
                image=image,
                item_id=row["item_id"],
                add=add,
                remove=remove,
                type=kind,
                group=group if isinstance(group, str) else None,
            )
        )
    if not queries:
        raise QueryFileError(f"{path}: no queries in the file")
    return queries
