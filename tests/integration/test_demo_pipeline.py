"""`stylesearch demo` end to end on a small demo catalog, then a second run that reuses it all."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from stylesearch.catalog.demo import DEFAULT_SOURCE, DemoConfig
from stylesearch.demo import demo_config, format_report, run_demo
from stylesearch.evaluation.tuning import COSINE_POWERS, WORD_WEIGHTS
from stylesearch.index.fusion import TextFusion
from stylesearch.index.store import MANIFEST
from stylesearch.model.visual import VisualConfig
from stylesearch.search.query import METHODS
from stylesearch.search.searcher import Searcher

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DEFAULT_SOURCE / "train-images-idx3-ubyte.gz").is_file(),
        reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
    ),
]


def test_small_demo_runs_every_stage_then_reuses_them(tmp_path: Path) -> None:
    catalog = DemoConfig(items=300, base_items=200, query_items=80, size=32)
    base = demo_config()
    config = replace(
        base,
        text=replace(base.text, min_count=2),
        model=replace(base.model, image_size=32, embed_dim=32),
        train=replace(base.train, epochs=1, batch_size=32, num_workers=0, warmup_steps=2),
    )
    visual = VisualConfig(epochs=1, batch_size=32, image_size=32, embed_dim=16, workers=0)
    logs: list[str] = []
    kwargs = dict(catalog_config=catalog, config=config, visual_config=visual, compare=True,
                  device="cpu", progress=False, log=logs.append)  # fmt: skip
    result = run_demo(tmp_path / "demo", **kwargs)

    for stage in range(1, 8):
        assert any(line.startswith(f"[{stage}/7]") for line in logs), stage
    report = json.loads((tmp_path / "demo" / "report" / "report.json").read_text())
    systems = {r["system"] for r in report["table"]}
    other = "mbmr" if base.loss.name == "triplet" else "triplet"  # the comparison's loss
    joint = f"joint ({base.loss.name})"
    assert systems == {joint, other, "resnet18-scratch", "off-the-shelf", "oracle"}
    assert {r["method"] for r in report["table"] if r["system"] == other} == set(METHODS)
    assert report["shape"] is True  # the demo's truth names every item's source garment
    settings = result.tuning["settings"]
    assert settings["word_weight"]["combined"] in WORD_WEIGHTS
    assert settings["cosine_power"] in COSINE_POWERS
    # the tuned settings travel with the index: a plain load searches with them
    searcher = Searcher.load(tmp_path / "demo" / "index")
    assert searcher.settings.source == "tuned"
    assert searcher.settings.to_dict() == settings
    queries = tmp_path / "demo" / "queries"
    val = {json.loads(x)["item_id"] for x in (queries / "validation.jsonl").open()}
    test = {json.loads(x)["item_id"] for x in (queries / "test.jsonl").open()}
    assert val and test and val.isdisjoint(test)
    text = format_report(result)
    assert f"| {joint} | combined |" in text
    assert "stylesearch serve --index" in text
    assert "Example searches" in text
    assert "`combined` over the off-the-shelf keyword-filter: MM " in text

    logs.clear()
    again = run_demo(tmp_path / "demo", **kwargs)
    trained = [line for line in logs if "training" in line or "indexing" in line]
    assert trained == [], trained
    assert sum("reusing" in line for line in logs) >= 8
    assert again.report["table"] == result.report["table"]

    # an index that fused the items' text otherwise (or not at all: built before) is rebuilt;
    # tuned on this same index before, it gets its recorded settings back
    manifest_path = tmp_path / "demo" / "index" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest.pop("metadata_fusion"), manifest.pop("metadata_weight")
    manifest_path.write_text(json.dumps(manifest))
    logs.clear()
    run_demo(tmp_path / "demo", **kwargs)
    indexed = [line for line in logs if ": indexing " in line]
    assert len(indexed) == 1 and f"with {tmp_path / 'demo' / 'model'}" in indexed[0], logs
    assert TextFusion.from_manifest(json.loads(manifest_path.read_text())) == TextFusion()
    assert Searcher.load(tmp_path / "demo" / "index").settings.to_dict() == settings

    # another catalog draw in the same workdir: nothing made from the old one is reused
    logs.clear()
    other = replace(catalog, seed=catalog.seed + 1)
    run_demo(tmp_path / "demo", **{**kwargs, "catalog_config": other, "compare": False})
    assert any("the catalog is new" in line for line in logs), logs
    assert not any("reusing" in line for line in logs), logs
    assert not (tmp_path / "demo" / "compare").exists()
