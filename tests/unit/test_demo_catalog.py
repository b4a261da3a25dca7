"""The demo catalog builder, on a tiny fake Fashion-MNIST (never the Debian package)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylesearch.catalog import demo, demo_render
from stylesearch.catalog.demo import (
    CATEGORIES,
    COLOURS,
    PATTERNS,
    SPLITS,
    DemoConfig,
    DemoSourceMissing,
    build_demo_catalog,
)
from stylesearch.catalog.demo_text import GROUPS, PLURALS, VOCABULARY, make_metadata
from stylesearch.catalog.fashion_mnist import SETS, load_set, read_idx, write_idx
from stylesearch.catalog.manifest import load_catalog


def make_fake_fashion_mnist(folder: Path, n_train: int = 120, n_test: int = 40) -> Path:
    """Write the four gzipped IDX files of a small fake Fashion-MNIST into ``folder``.

    Each image is a garment-like blob on a black background (28 x 28 uint8), label ``i % 10``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(123)
    yy, xx = np.mgrid[0:28, 0:28]
    for which, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = np.zeros((n, 28, 28), np.uint8)
        for i, label in enumerate(labels):
            h, w = 6 + label % 5 + rng.integers(0, 4), 5 + label // 2 + rng.integers(0, 4)
            cy, cx = 14 + rng.integers(-2, 3), 14 + rng.integers(-2, 3)
            blob = ((yy - cy) / h) ** 2 + ((xx - cx) / w) ** 2 <= 1.0
            shade = 90 + 150 * (1 - np.abs(xx - cx) / 14) + rng.integers(0, 15, (28, 28))
            images[i] = np.where(blob, np.clip(shade, 0, 255), 0).astype(np.uint8)
        img_stem, lab_stem = SETS[which]
        write_idx(folder / f"{img_stem}.gz", images)
        write_idx(folder / f"{lab_stem}.gz", labels)
    return folder


SMALL = {"items": 40, "base_items": 30, "query_items": 10, "size": 32}


@pytest.fixture(scope="module")
def fake_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fake_fashion_mnist(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="module")
def small(fake_source: Path, tmp_path_factory: pytest.TempPathFactory) -> demo.DemoCatalog:
    out = tmp_path_factory.mktemp("demo") / "catalog"
    return build_demo_catalog(out, DemoConfig(**SMALL, source=fake_source), progress=False)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- the IDX reader ---------------------------------------------------------------------------


def test_read_idx_round_trip_gzipped_and_plain(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.gz", "a"):
        write_idx(tmp_path / name, data)
        assert np.array_equal(read_idx(tmp_path / name), data)


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros(10, np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(ValueError, match="payload"):
        read_idx(tmp_path / "short")


def test_load_set_shapes(fake_source: Path) -> None:
    images, labels = load_set(fake_source, "t10k")
    assert images.shape == (40, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (40,) and set(labels.tolist()) == set(range(10))


# --- missing source ---------------------------------------------------------------------------


def test_missing_source_says_how_to_install(tmp_path: Path) -> None:
    cfg = DemoConfig(**SMALL, source=tmp_path / "nowhere")
    with pytest.raises(DemoSourceMissing) as info:
        build_demo_catalog(tmp_path / "out", cfg, progress=False)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--source" in message
    assert isinstance(info.value, FileNotFoundError)
    assert not (tmp_path / "out").exists()


def test_partial_source_names_the_missing_file(fake_source: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    for path in fake_source.iterdir():
        if not path.name.startswith("t10k-labels"):
            (partial / path.name).write_bytes(path.read_bytes())
    with pytest.raises(DemoSourceMissing, match="t10k-labels-idx1-ubyte"):
        build_demo_catalog(tmp_path / "out", DemoConfig(**SMALL, source=partial), progress=False)


# --- vocabulary -------------------------------------------------------------------------------


def test_vocabulary_is_large_enough_and_unambiguous() -> None:
    assert len(CATEGORIES) == 10
    assert len(COLOURS) >= 10
    assert len(PATTERNS) >= 5
    assert {"solid", "striped", "dotted", "checked"} <= set(PATTERNS)
    assert list(COLOURS) == list(demo_render.COLOUR_RGB)
    assert tuple(PATTERNS) == demo_render.PATTERN_NAMES
    words = [w for vocab in VOCABULARY.values() for k, syn in vocab.items() for w in [k, *syn]]
    assert len(words) == len(set(words)), "a word names two attribute values"
    assert all(re.fullmatch(r"[a-z]+", w) for w in words), "every word is one lower-case token"


def test_colours_are_distinct() -> None:
    rgb = np.array(list(demo_render.COLOUR_RGB.values()), dtype=float)
    dist = np.sqrt(((rgb[:, None] - rgb[None]) ** 2).sum(-1)) + np.eye(len(rgb)) * 1e3
    assert dist.min() > 60


# --- the small build --------------------------------------------------------------------------


def test_layout_and_counts(small: demo.DemoCatalog) -> None:
    assert not small.reused
    assert small.counts["train"] == 40 and small.counts["base"] == 30
    assert small.counts["query"] == 10 and small.counts["images"] == 80 * 2
    for path in (small.truth, small.datasheet, small.grid, small.root / "build.json"):
        assert path.is_file()
    for split in SPLITS:
        assert small.manifest(split) == small.root / split / "manifest.jsonl"
    text = small.datasheet.read_text()
    assert "samples.png" in text and "crimson" in text and "15%" in text
    assert Image.open(small.grid).size[0] > 600


def test_every_row_is_accepted_and_has_two_images(small: demo.DemoCatalog) -> None:
    for split in SPLITS:
        catalog = load_catalog(small.manifest(split))
        assert len(catalog.rejected) == 0, catalog.rejected[:3]
        assert len(catalog.items) == small.counts[split]
        for item in catalog.items:
            assert item.id.startswith(split + "-")
            assert len(item.all_images) >= 2
            with Image.open(item.image) as img:
                assert img.mode == "RGB" and img.size == (32, 32)
            assert item.title


def test_truth_matches_manifests_and_declared_lists(small: demo.DemoCatalog) -> None:
    truth = read_jsonl(small.truth)
    ids = [r["id"] for split in SPLITS for r in read_jsonl(small.manifest(split))]
    assert [t["id"] for t in truth] == ids and len(set(ids)) == len(ids)
    for t in truth:
        assert t["category"] in CATEGORIES
        assert t["colour"] in COLOURS
        assert t["pattern"] in PATTERNS
    assert {t["split"] for t in truth} == set(SPLITS)


def test_category_comes_from_the_label(small: demo.DemoCatalog, fake_source: Path) -> None:
    names = list(CATEGORIES)
    sets = {which: load_set(fake_source, which)[1] for which in ("train", "t10k")}
    for t in read_jsonl(small.truth):
        assert t["category"] == names[int(sets[t["source"]][t["source_index"]])]


def test_splits_use_disjoint_source_images(small: demo.DemoCatalog) -> None:
    used: dict[str, set[tuple[str, int]]] = {s: set() for s in SPLITS}
    for t in read_jsonl(small.truth):
        used[t["split"]].add((t["source"], t["source_index"]))
    assert {s for s, _ in used["train"] | used["base"]} == {"train"}
    assert {s for s, _ in used["query"]} == {"t10k"}
    assert not used["train"] & used["base"]
    assert not used["train"] & used["query"] and not used["base"] & used["query"]
    assert len(used["train"]) == 40  # no reuse inside the training catalog


def test_large_base_reuses_shapes_with_new_combinations(fake_source: Path, tmp_path: Path) -> None:
    cfg = DemoConfig(items=100, base_items=90, query_items=5, size=32, source=fake_source)
    plans = {p.name: p for p in demo.plan_splits(cfg, 120, 40)}
    base = plans["base"]
    assert base.distinct == 20 and len(base.source_index) == 90
    assert not set(base.source_index.tolist()) & set(plans["train"].source_index.tolist())
    combos = set(
        zip(base.source_index.tolist(), base.colour.tolist(), base.pattern.tolist(), strict=True)
    )
    assert len(combos) == 90, "a reused shape got the same colour and pattern twice"


def test_too_many_training_items_is_a_clear_error(fake_source: Path, tmp_path: Path) -> None:
    cfg = DemoConfig(items=120, base_items=5, query_items=5, size=32, source=fake_source)
    with pytest.raises(ValueError, match="use fewer items"):
        build_demo_catalog(tmp_path / "out", cfg, progress=False)
    with pytest.raises(ValueError, match="views"):
        DemoConfig(views=0).validate()
    with pytest.raises(ValueError, match="missing_rate"):
        DemoConfig(missing_rate=0.7, wrong_rate=0.5).validate()


def test_views_differ_from_the_main_image(small: demo.DemoCatalog) -> None:
    row = read_jsonl(small.train_manifest)[0]
    base = small.train_manifest.parent
    main = np.asarray(Image.open(base / row["image"]))
    extra = np.asarray(Image.open(base / row["extra_images"][0]))
    assert main.shape == extra.shape and not np.array_equal(main, extra)


# --- determinism, reuse, atomic replacement ---------------------------------------------------


def test_same_seed_same_bytes_other_seed_differs(
    small: demo.DemoCatalog, fake_source: Path, tmp_path: Path
) -> None:
    again = build_demo_catalog(
        tmp_path / "again", DemoConfig(**SMALL, source=fake_source), progress=False
    )
    assert tree_digest(again.root) == tree_digest(small.root)
    other = build_demo_catalog(
        tmp_path / "other", DemoConfig(**SMALL, seed=1, source=fake_source), progress=False
    )
    assert other.train_manifest.read_bytes() != small.train_manifest.read_bytes()
    assert other.truth.read_bytes() != small.truth.read_bytes()


def test_worker_processes_give_the_same_catalog(
    small: demo.DemoCatalog, fake_source: Path, tmp_path: Path
) -> None:
    cfg = DemoConfig(**SMALL, source=fake_source)
    parallel = build_demo_catalog(tmp_path / "par", cfg, progress=False, workers=2)
    assert tree_digest(parallel.root) == tree_digest(small.root)


def test_second_run_does_no_work(
    small: demo.DemoCatalog, fake_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p: p.stat().st_mtime_ns for p in small.root.rglob("*")}

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuilt an up-to-date catalog")

    monkeypatch.setattr(demo, "_build_into", fail)
    again = build_demo_catalog(small.root, DemoConfig(**SMALL, source=fake_source))
    assert again.reused and again.counts == small.counts
    assert {p: p.stat().st_mtime_ns for p in small.root.rglob("*")} == before


def test_incomplete_catalog_is_rebuilt(fake_source: Path, tmp_path: Path) -> None:
    cfg = DemoConfig(**SMALL, source=fake_source)
    first = build_demo_catalog(tmp_path / "cat", cfg, progress=False)
    victim = first.train_manifest.parent / read_jsonl(first.train_manifest)[3]["image"]
    victim.unlink()
    again = build_demo_catalog(tmp_path / "cat", cfg, progress=False)
    assert not again.reused and victim.is_file()


def test_new_config_replaces_the_catalog(fake_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "cat"
    build_demo_catalog(out, DemoConfig(**SMALL, source=fake_source), progress=False)
    changed = build_demo_catalog(
        out, DemoConfig(**SMALL, seed=7, source=fake_source), progress=False
    )
    assert not changed.reused
    assert json.loads((out / "build.json").read_text())["config"]["seed"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"], "temporary folders left"


def test_interrupted_build_leaves_the_previous_catalog(
    fake_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cat"
    build_demo_catalog(out, DemoConfig(**SMALL, source=fake_source), progress=False)
    before = tree_digest(out)
    real = demo._write_item
    calls = []

    def flaky(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > 25:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(demo, "_write_item", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_demo_catalog(out, DemoConfig(**SMALL, seed=3, source=fake_source), progress=False)
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"], "half-built folder left"


def test_refuses_to_overwrite_a_foreign_folder(fake_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a demo catalog"):
        build_demo_catalog(out, DemoConfig(**SMALL, source=fake_source), progress=False)
    assert (out / "precious.txt").read_text() == "keep me"


# --- metadata noise ---------------------------------------------------------------------------


def group_words(group: str, value: str) -> set[str]:
    words = {value, *VOCABULARY[group][value]}
    return words | {PLURALS[w] for w in words if w in PLURALS}


def tokens(meta: dict) -> set[str]:
    text = " ".join([meta["title"], meta["description"], *meta["attributes"]])
    return set(re.findall(r"[a-z]+", text.lower()))


def test_noise_rates_and_noise_is_what_it_says() -> None:
    rng = np.random.default_rng(0)
    n, missing, wrong, synonyms = 600, 0, 0, 0
    names = {g: list(VOCABULARY[g]) for g in GROUPS}
    for _ in range(n):
        truth = {g: names[g][int(rng.integers(len(names[g])))] for g in GROUPS}
        meta = make_metadata(truth, rng, missing_rate=0.2, wrong_rate=0.1, synonym_rate=0.3)
        toks = tokens(meta)
        noise = meta["noise"]
        for g in GROUPS:
            said = toks & group_words(g, truth[g])
            if noise and noise["group"] == g:
                assert not said, (meta, truth)
                if noise["kind"] == "wrong":
                    assert toks & group_words(g, noise["value"]), (meta, truth)
            elif g == "pattern" and truth[g] == "solid":
                pass  # solid is named only half of the time
            else:
                assert said, (g, meta, truth)
                synonyms += truth[g] not in said
        missing += bool(noise and noise["kind"] == "missing")
        wrong += bool(noise and noise["kind"] == "wrong")
    assert 0.15 < missing / n < 0.25
    assert 0.06 < wrong / n < 0.14
    assert synonyms > 0.1 * n


def test_built_truth_records_noise_at_roughly_the_set_rates(small: demo.DemoCatalog) -> None:
    truth = read_jsonl(small.truth)
    kinds = [t["noise"]["kind"] for t in truth if t["noise"]]
    assert set(kinds) <= {"missing", "wrong"}
    assert len(kinds) < 0.5 * len(truth)


def test_patterns_draw_a_second_tone_that_covers_part_of_the_garment() -> None:
    rng = np.random.default_rng(0)
    for pattern in PATTERNS:
        w = demo_render.pattern_weight(pattern, 64, rng)
        assert w.shape == (64, 64) and w.min() >= 0.0 and w.max() <= 1.0
        if pattern == "solid":
            assert w.max() == 0.0
        else:
            assert 0.1 < w.mean() < 0.6, pattern


def test_garment_keeps_its_silhouette() -> None:
    grey = np.zeros((28, 28), np.uint8)
    grey[6:22, 9:19] = 200
    prem, alpha = demo_render.garment(grey, "red", "striped", 64, np.random.default_rng(0))
    assert alpha[:8].max() == 0.0 and alpha[32, 32] == 1.0
    image = demo_render.compose(prem, alpha, np.array([235.0, 235.0, 235.0]))
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
    assert image[32, 32, 0] > image[32, 32, 2]  # red where the garment is
