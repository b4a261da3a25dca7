"""The evaluation protocol end to end on a tiny index: train-visual, build-queries, eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylesearch.cli import cli
from stylesearch.evaluation.metrics import ndcg
from stylesearch.evaluation.queries import load_queries
from stylesearch.model.visual import VisualModelError, load_visual
from stylesearch.search.query import METHODS

GROUPS = "colour=0.5,pattern=0.3,shape=0.2"


def _query_catalog(root: Path) -> tuple[Path, Path]:
    """A second shapes catalog whose ids are prefixed ``q-`` (never in the base catalog)."""
    from stylesearch.catalog.synthetic import make_shapes_catalog

    manifest = make_shapes_catalog(root, 40, seed=11, image_size=32)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    truth = [json.loads(line) for line in (root / "truth.jsonl").read_text().splitlines()]
    for row in (*rows, *truth):
        row["id"] = "q-" + row["id"]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in truth))
    return manifest, root / "truth.jsonl"


def _truth_with_sources(root: Path, base_truth: Path, query_truth: Path) -> Path:
    """One truth file for both catalogs (as the demo's), naming a fake source image per item.

    Each item's source is a random 28 x 28 garment of a fake Fashion-MNIST folder, recorded in
    a ``build.json`` beside the file: enough for the shape judge and the oracle.
    """
    from stylesearch.catalog.fashion_mnist import write_idx

    rows = [
        {**json.loads(line), "split": split}
        for split, path in (("base", base_truth), ("query", query_truth))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    rng = np.random.default_rng(5)
    source = root / "fmnist"
    source.mkdir()
    for name, n in (("train", len(rows)), ("t10k", 1)):
        write_idx(source / f"{name}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(source / f"{name}-labels-idx1-ubyte.gz", np.zeros(n, np.uint8))
    for i, row in enumerate(rows):
        row.update(source="train", source_index=i, category=row["shape"])
    folder = root / "truth"
    folder.mkdir()
    (folder / "build.json").write_text(json.dumps({"config": {"source": str(source)}}))
    (folder / "truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "truth.jsonl"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, build_tiny_index, one_torch_thread) -> dict:
    root = tmp_path_factory.mktemp("eval")
    base_manifest = build_tiny_index(root / "base", items=60)
    query_manifest, query_truth = _query_catalog(root / "queries")
    runner = CliRunner()
    visual = runner.invoke(cli, [
        "train-visual", "--catalog", str(base_manifest), "--out", str(root / "visual"),
        "--epochs", "1", "--batch-size", "16", "--image-size", "32", "--embed-dim", "16",
        "--workers", "0", "--device", "cpu", "--quiet",
    ])  # fmt: skip
    assert visual.exit_code == 0, visual.output
    queries = runner.invoke(cli, [
        "eval", "build-queries", "--catalog", str(query_manifest), "--truth",
        str(query_truth), "--out", str(root / "q" / "test.jsonl"), "--n", "24",
        "--groups", GROUPS,
    ])  # fmt: skip
    assert queries.exit_code == 0, queries.output
    truth = _truth_with_sources(root, base_manifest.parent / "truth.jsonl", query_truth)
    result = runner.invoke(cli, [
        "eval", "--index", str(root / "base" / "exact"), "--queries",
        str(root / "q" / "test.jsonl"), "--visual", str(root / "visual"), "-k", "5",
        "--out", str(root / "report"), "--truth", str(truth),
        "--compare", f"again={root / 'base' / 'exact'}", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return {
        "root": root, "truth": truth, "visual_out": visual.output, "eval_out": result.output
    }  # fmt: skip


def test_train_visual_reports_held_out_recall(evaluated: dict) -> None:
    summary = json.loads(evaluated["visual_out"].strip().splitlines()[-1])
    assert 0.0 <= summary["val_r1"] <= 1.0 and summary["val_items"] >= 2
    model = load_visual(evaluated["root"] / "visual")
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 16)
    np.testing.assert_allclose(out.norm(dim=-1).detach().numpy(), 1.0, rtol=1e-5)


def test_report_files_and_rows(evaluated: dict) -> None:
    out = evaluated["root"] / "report"
    for name in ("report.json", "report.md", "per_query.jsonl", "methods.png", "examples.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    pairs = {(r["system"], r["method"]) for r in report["table"]}
    for system in ("main", "again"):
        assert {(system, m) for m in METHODS} <= pairs
    assert ("off-the-shelf", "keyword-filter") in pairs
    assert ("off-the-shelf", "stock-visual") in pairs
    assert ("oracle", "truth+shape") in pairs
    assert report["shape"] is True
    for r in report["table"]:
        for key in (
            "v_ndcg", "t_ndcg", "mm", "t_ndcg_truth", "mm_truth", "v_shape", "mm_shape",
            "category_at_k", "kept_at_k",
        ):  # fmt: skip
            assert 0.0 <= r[key] <= 1.0 + 1e-9, (r["system"], r["method"], key)
        assert r["mm"] == pytest.approx(np.sqrt(r["v_ndcg"] * r["t_ndcg"]))
        assert r["mm_shape"] == pytest.approx(np.sqrt(r["v_shape"] * r["t_ndcg_truth"]))
        assert sum(v["queries"] for v in r["by_type"].values()) == r["queries"] == 24
    assert "| main | combined |" in (out / "report.md").read_text()
    assert "| main | combined |" in evaluated["eval_out"]


def test_the_same_system_twice_scores_the_same(evaluated: dict) -> None:
    report = json.loads((evaluated["root"] / "report" / "report.json").read_text())
    rows = {(r["system"], r["method"]): r for r in report["table"]}
    for m in METHODS:
        assert rows[("main", m)]["mm"] == pytest.approx(rows[("again", m)]["mm"])
    # combined against every other list, its twin in the other system gaining nothing
    gains = {(g["system"], g["method"]): g for g in report["bootstrap"]["gains"]}
    assert set(gains) == set(rows) - {("main", "combined")}
    twin = gains[("again", "combined")]
    for label in ("mm", "mm_shape"):
        assert [twin[label][k] for k in ("gain", "low", "high")] == pytest.approx([0, 0, 0])
    assert (
        "## How sure: `combined` against every other list"
        in (evaluated["root"] / "report" / "report.md").read_text()
    )


def test_per_query_ndcg_recomputed_from_the_judges(evaluated: dict) -> None:
    """Recompute T-nDCG of a few rows from the index's metadata and the returned ids."""
    from stylesearch.search.searcher import Searcher

    root = evaluated["root"]
    searcher = Searcher.load(root / "base" / "exact")
    index = searcher.index
    queries = {q.query_id: q for q in load_queries(root / "q" / "test.jsonl")}
    rows = [json.loads(line) for line in (root / "report" / "per_query.jsonl").open()]
    checked = 0
    for r in rows:
        if r["system"] != "main" or r["method"] not in ("filter-hard", "visual"):
            continue
        q = queries[r["query_id"]]
        gains = np.zeros(index.count)
        for row in range(index.count):
            words = set(index.metadata_word_ids(row).tolist())
            met = sum(searcher.word_id(w) in words for w in q.add)
            met += sum(searcher.word_id(w) not in words for w in q.remove)
            gains[row] = met / (len(q.add) + len(q.remove))
        ranked = [gains[index.row_of(i)] for i in r["ids"]]
        assert r["t"] == pytest.approx(ndcg(ranked, gains, 5))
        if r["method"] == "filter-hard" and r["ids"]:
            assert all(g == 1.0 for g in ranked)  # the hard filter only returns matching items
        checked += 1
    assert checked == 48


def test_with_settings_shares_the_words_and_ranks_as_a_new_searcher(evaluated: dict) -> None:
    from stylesearch.search.query import Query
    from stylesearch.search.searcher import Searcher

    base = Searcher.load(evaluated["root"] / "base" / "exact", grounding_threshold=None)
    before = base.settings.to_dict()
    look = 0.5 if base.model.look is not None else None
    other = base.with_settings(word_weight=2.0, cosine_power=3.0, look_weight=look)
    fresh = Searcher(
        base.index, base.model, word_weight=2.0, cosine_power=3.0, look_weight=look,
        grounding_threshold=None,
    )  # fmt: skip
    assert other.pipeline is base.pipeline and other.index is base.index
    assert base.settings.to_dict() == before
    assert other.settings.to_dict() == fresh.settings.to_dict()
    assert other.settings.to_dict() != before
    for method in ("combined", "arithmetic"):
        q = Query(item_id=base.index.item(0).id, add=["red"], method=method, k=5)
        got, want = other.search(q), fresh.search(q)
        assert [h.id for h in got.results] == [h.id for h in want.results]
        assert [h.score for h in got.results] == pytest.approx([h.score for h in want.results])


def test_shape_judge_and_oracle_recomputed_by_hand(evaluated: dict) -> None:
    """V-shape from the fake source pixels, and the oracle's answers, recomputed in numpy."""
    from stylesearch.catalog.fashion_mnist import load_set
    from stylesearch.search.searcher import Searcher

    root = evaluated["root"]
    index = Searcher.load(root / "base" / "exact").index
    truth = {r["id"]: r for r in map(json.loads, evaluated["truth"].read_text().splitlines())}
    pixels = load_set(root / "fmnist", "train")[0].reshape(-1, 784).astype(np.float64)

    def centred(ids: list[str], split: str) -> np.ndarray:
        rows = [pixels[r["source_index"]] for r in truth.values() if r["split"] == split]
        mean = np.mean(rows, axis=0)
        x = np.stack([pixels[truth[i]["source_index"]] for i in ids]) - mean
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    base_ids = [index.item(row).id for row in range(index.count)]
    base = centred(base_ids, "base")
    queries = {q.query_id: q for q in load_queries(root / "q" / "test.jsonl")}
    rows = [json.loads(line) for line in (root / "report" / "per_query.jsonl").open()]
    oracle = [r for r in rows if r["system"] == "oracle"]
    assert len(oracle) == 2 * 24
    # the groups the queries change, but category (category@K's)
    attribute_groups = {q.group for q in queries.values()} - {"category"}
    assert any(r["ids"] for r in oracle if r["method"] == "truth+kept+shape")
    for r in rows:
        if r["method"] not in ("visual", "truth+shape", "truth+kept+shape"):
            continue
        q = queries[r["query_id"]]
        gains = np.clip(base @ centred([q.item_id], "query")[0], 0, None)
        ranked = [gains[index.row_of(i)] for i in r["ids"]]
        assert r["v_shape"] == pytest.approx(ndcg(ranked, gains, 5))
        if r["system"] == "oracle":
            group = q.group
            meets = [
                all(truth[i][group] == w for w in q.add)
                and all(truth[i][group] != w for w in q.remove)
                and (
                    r["method"] == "truth+shape"  # the other also keeps what q leaves alone
                    or all(truth[i][g] == truth[q.item_id][g] for g in attribute_groups - {group})
                )
                for i in base_ids
            ]
            met = [i for i, m in zip(base_ids, meets, strict=True) if m]
            best = sorted(met, key=lambda i: -gains[index.row_of(i)])[:5]
            assert r["ids"] == best
            if len(best) == 5:  # fewer: partly matching items are in the ideal ordering
                assert r["t_truth"] == pytest.approx(1.0)
    assert "V-shape" in (root / "report" / "report.md").read_text()


def test_query_items_inside_the_base_catalog_are_refused(evaluated: dict) -> None:
    root = evaluated["root"]
    bad = root / "q" / "bad.jsonl"
    rows = [json.loads(line) for line in (root / "q" / "test.jsonl").open()]
    rows[0]["item_id"] = "shape-00000"  # a base catalog item
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(cli, [
        "eval", "--index", str(root / "base" / "exact"), "--queries", str(bad),
        "--visual", str(root / "visual"), "--out", str(root / "bad-report"), "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 1
    assert "is in the base catalog" in result.output
    assert "Traceback" not in result.output


def test_eval_needs_its_options_and_a_visual_model(evaluated: dict, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "--index", "x"])
    assert result.exit_code == 2 and "--queries" in result.output
    with pytest.raises(VisualModelError, match="train-visual"):
        load_visual(tmp_path)
    (tmp_path / "config.json").write_text("{not json")  # a truncated write: a clear error
    with pytest.raises(VisualModelError, match="not valid JSON"):
        load_visual(tmp_path)
    result = runner.invoke(cli, [
        "train-visual", "--catalog", "x.jsonl", "--out", str(evaluated["root"] / "visual"),
    ])  # fmt: skip
    assert result.exit_code == 1 and "--overwrite" in result.output


def test_deleted_items_are_neither_returned_nor_ideal(evaluated: dict) -> None:
    import shutil

    from stylesearch.evaluation.protocol import EvaluationError
    from stylesearch.evaluation.report import run_evaluation
    from stylesearch.index.update import delete_items

    root = evaluated["root"]
    rows = [json.loads(line) for line in (root / "report" / "per_query.jsonl").open()]
    gone = {r["ids"][0] for r in rows if r["system"] == "main" and r["method"] == "visual"}
    copy = root / "deleted-index"
    shutil.copytree(root / "base" / "exact", copy)
    delete_items(copy, sorted(gone))
    report = run_evaluation(
        copy, root / "q" / "test.jsonl", root / "visual", root / "deleted-report", k=5,
        methods=["visual", "combined"], progress=False, log=lambda _: None,
    )  # fmt: skip
    assert {r["method"] for r in report["table"]} >= {"visual", "combined"}
    for line in (root / "deleted-report" / "per_query.jsonl").open():
        assert gone.isdisjoint(json.loads(line)["ids"])
    with pytest.raises(EvaluationError, match="same base catalog"):
        run_evaluation(
            copy, root / "q" / "test.jsonl", root / "visual", root / "bad", k=5,
            compare=[("full", root / "base" / "exact")], methods=["visual"], baseline=False,
            progress=False, log=lambda _: None,
        )  # fmt: skip


def test_tune_records_settings_that_search_then_uses(evaluated: dict) -> None:
    import shutil

    from stylesearch.index.update import delete_items
    from stylesearch.search.query import Query
    from stylesearch.search.searcher import Searcher

    root = evaluated["root"]
    index = root / "tuned-index"
    shutil.copytree(root / "base" / "exact", index)
    assert Searcher.load(index).settings.source == "default"
    args = [
        "tune", "--index", str(index), "--queries", str(root / "q" / "test.jsonl"),
        "--visual", str(root / "visual"), "--truth", str(evaluated["truth"]), "-k", "5",
        "--word-weights", "0,2", "--cosine-powers", "1,3", "--look-weights", "0,0.5",
        "--min-truth-t", "0.9", "--quiet",
    ]  # fmt: skip
    dry = CliRunner().invoke(cli, [*args, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    result = json.loads(dry.stdout)
    assert Searcher.load(index).settings.source == "default"  # a dry run records nothing
    assert result["objective"] == "sqrt(MM x MM-shape)"
    # per look weight, one row per arithmetic weight and per combined (weight, power); the best
    # combined row sets the look weight, arithmetic's best at that look weight its word weight
    assert len(result["table"]) == 2 * (2 + 4)
    for r in result["table"]:
        assert r["objective"] == pytest.approx(np.sqrt(r["mm"] * r["mm_shape"]))
        # each setting's metrics per query kind; the worst kind's T (truth) is the floor's
        assert set(r["by_kind"]) <= {"add", "remove", "replace"} and r["by_kind"]
        kinds_t = [v["t_ndcg_truth"] for v in r["by_kind"].values()]
        assert r["t_ndcg_truth_worst_kind"] == min(kinds_t)
        for v in r["by_kind"].values():
            assert v["mm_shape"] == pytest.approx(np.sqrt(v["v_shape"] * v["t_ndcg_truth"]))

    def pick(rows):  # the best objective among the rows that keep T (truth) >= 0.9, if any;
        # of the rows within the tie of it, the one whose worst query kind obeys the words best
        kept = [r for r in rows if r["t_ndcg_truth"] >= 0.9] or rows
        top = max(r["objective"] for r in kept)
        tied = [r for r in kept if r["objective"] >= top - result["tie"]]
        return max(tied, key=lambda r: (r["t_ndcg_truth_worst_kind"], r["objective"]))

    best = pick([r for r in result["table"] if r["method"] == "combined"])
    assert result["settings"]["cosine_power"] == best["cosine_power"]
    assert result["settings"]["look_weight"] == best["look_weight"]
    assert result["settings"]["word_weight"]["combined"] == best["word_weight"]
    arithmetic = [
        r for r in result["table"]
        if r["method"] == "arithmetic" and r["look_weight"] == best["look_weight"]
    ]  # fmt: skip
    best = pick(arithmetic)
    assert result["settings"]["word_weight"]["arithmetic"] == best["word_weight"]

    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "recorded in" in done.output
    searcher = Searcher.load(index)
    assert searcher.settings.source == "tuned"
    assert searcher.settings.to_dict() == {**result["settings"], "source": "tuned"}
    # a plain search runs with them, flags still override them
    q = Query(item_id=searcher.index.item(0).id, add=["red"], method="combined", k=3)
    used = searcher.search(q).query
    assert used["word_weight"] == result["settings"]["word_weight"]["combined"]
    assert used["cosine_power"] == result["settings"]["cosine_power"]
    assert used["look_weight"] == result["settings"]["look_weight"]
    assert Searcher.load(index, cosine_power=7).search(q).query["cosine_power"] == 7.0
    # index delete keeps the tuned settings
    delete_items(index, [searcher.index.item(1).id])
    assert Searcher.load(index).settings.to_dict() == searcher.settings.to_dict()
