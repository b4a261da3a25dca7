"""``stylesearch demo``: the whole pipeline on the built-in Fashion-MNIST style catalog.

Stages, each reused when its output is already there and up to date (a second run only loads
and prints):

1. build the demo catalog (``WORKDIR/catalog``; :mod:`stylesearch.catalog.demo`);
2. train the joint model on its training split (``WORKDIR/model``, config
   ``stylesearch/configs/demo.toml``); an interrupted training resumes from its checkpoint;
3. train the baseline visual model, the V-nDCG judge (``WORKDIR/visual``);
4. index the base catalog (``WORKDIR/index``, exact backend) and score the attribute head on it
   against the clean truth and the noisy metadata (``WORKDIR/attributes.json``);
5. build the benchmark queries: a validation set and a test set from different query items
   (``WORKDIR/queries``);
6. tune the search settings on the validation queries (``stylesearch tune``: per-method word
   weights and the soft filter's cosine power), recorded in the index and in
   ``WORKDIR/tuning.json``;
7. evaluate every method, the off-the-shelf baseline and (with ``compare=True``) the joint
   model trained with the triplet loss and with a ResNet-18 tower from scratch, on the test
   queries, once (``WORKDIR/report``).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from stylesearch.catalog.demo import DemoCatalog, DemoConfig, build_demo_catalog
from stylesearch.catalog.manifest import load_catalog
from stylesearch.config import DEFAULT_DEVICE, Config, load_config
from stylesearch.demo_stages import (
    describe_settings,
    ensure_index,
    ensure_model,
    ensure_queries,
    ensure_visual,
    evaluate_demo,
    score_attributes,
    tune_search,
)
from stylesearch.model.visual import VisualConfig

DEFAULT_WORKDIR = Path("runs/demo")
STAGES = 7
#: what the stages after the catalog write under the workdir, all made from the catalog
LATER_STAGES = (
    "model",
    "compare",
    "visual",
    "index",
    "attributes.json",
    "queries",
    "tuning.json",
    "report",
)
Log = Callable[[str], None]


def demo_config() -> Config:
    """The packaged training config of the demo (``stylesearch/configs/demo.toml``)."""
    with resources.as_file(resources.files("stylesearch") / "configs" / "demo.toml") as path:
        return load_config(path)


def comparison_configs(config: Config) -> dict[str, Config]:
    """The joint-model variants of the report's comparisons (same data, epochs and seed): the
    other match loss, and a ResNet-18 tower from scratch."""
    other = "mbmr" if config.loss.name == "triplet" else "triplet"
    return {
        other: replace(config, loss=replace(config.loss, name=other)),
        "resnet18-scratch": replace(
            config, model=replace(config.model, backbone="resnet18", pretrained=False)
        ),
    }


@dataclass
class DemoResult:
    workdir: Path
    catalog_counts: dict[str, Any]
    train_metrics: dict[str, Any]
    visual_metrics: dict[str, Any]
    attributes: dict[str, Any]
    tuning: dict[str, Any]
    report: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    #: titles of the example queries' items (from the query catalog)
    query_titles: dict[str, str] = field(default_factory=dict)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _stage(i: int, name: str, log: Log) -> Log:
    return lambda msg: log(f"[{i}/{STAGES}] {name}: {msg}")


def run_demo(
    workdir: str | Path = DEFAULT_WORKDIR,
    *,
    catalog_config: DemoConfig | None = None,
    config: Config | None = None,
    visual_config: VisualConfig | None = None,
    compare: bool = False,
    device: str = DEFAULT_DEVICE,
    progress: bool = True,
    log: Log | None = None,
) -> DemoResult:
    """Run (or reuse) every demo stage under ``workdir`` and return their results."""
    log = log or _stderr
    workdir = Path(workdir)
    config = config or demo_config()
    config = replace(config, train=replace(config.train, device=device))
    visual_config = replace(visual_config or VisualConfig(), device=device)
    seconds: dict[str, float] = {}

    with _timed(seconds, "catalog"):
        cat = _build_catalog(workdir, catalog_config, progress=progress, log=log)
    say = _stage(2, "joint model", log)
    with _timed(seconds, "train"):
        metrics = ensure_model(
            cat.train_manifest, workdir / "model", config, progress=progress, log=say
        )
        compare_dirs = _train_comparisons(cat, workdir, config, compare, progress, say)

    say = _stage(3, "visual model", log)
    visual_dir = workdir / "visual"
    with _timed(seconds, "visual"):
        visual = ensure_visual(
            cat.train_manifest, visual_dir, visual_config, progress=progress, log=say
        )
    say(
        f"held-out same-item R@1 {visual.get('val_r1', float('nan')):.3f} "
        f"R@10 {visual.get('val_r10', float('nan')):.3f}"
    )

    say = _stage(4, "index", log)
    index_dir = workdir / "index"
    with _timed(seconds, "index"):
        for model_dir, out in [(workdir / "model", index_dir)] + [
            (f / "model", f / "index") for f in compare_dirs.values()
        ]:
            ensure_index(
                model_dir, cat.base_manifest, out, device=device, progress=progress, log=say
            )
        attributes = score_attributes(
            index_dir, cat.base_manifest, cat.truth, workdir / "attributes.json", log=say
        )

    with _timed(seconds, "queries"):
        queries = ensure_queries(
            cat.query_manifest, cat.truth, workdir / "queries", log=_stage(5, "queries", log)
        )

    with _timed(seconds, "tuning"):
        tuning = tune_search(
            index_dir, queries["validation"], visual_dir, cat.truth, workdir / "tuning.json",
            progress=progress, log=_stage(6, "tuning", log),
        )  # fmt: skip

    with _timed(seconds, "evaluation"):
        report = evaluate_demo(
            workdir, index_dir, queries["test"], visual_dir, cat.truth, tuning,
            {n: f / "index" for n, f in compare_dirs.items()}, name=f"joint ({config.loss.name})",
            progress=progress, log=_stage(7, "evaluation", log),
        )  # fmt: skip
    titles = _query_titles(cat, report)
    return DemoResult(
        workdir, cat.counts, metrics, visual, attributes, tuning, report, seconds, titles
    )


@contextmanager
def _timed(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Add the time spent in the block to ``seconds[name]``."""
    t0 = time.perf_counter()
    yield
    seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0


def _build_catalog(
    workdir: Path, catalog_config: DemoConfig | None, *, progress: bool, log: Log
) -> DemoCatalog:
    """Stage 1: build (or reuse) the demo catalog in ``workdir / "catalog"``."""
    say = _stage(1, "catalog", log)
    say(f"building the demo catalog in {workdir / 'catalog'}")
    cat = build_demo_catalog(workdir / "catalog", catalog_config, progress=progress)
    stale = [workdir / name for name in LATER_STAGES if (workdir / name).exists()]
    if not cat.reused and stale:  # made from another catalog (another --seed): never reuse
        say("the catalog is new: removing what earlier runs made from another one")
        for path in stale:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    say(
        f"{'reused' if cat.reused else 'built'} ({cat.counts.get('train')} train / "
        f"{cat.counts.get('base')} base / {cat.counts.get('query')} query items) "
        f"in {cat.seconds:.1f} s"
    )
    return cat


def _train_comparisons(
    cat: DemoCatalog, workdir: Path, config: Config, compare: bool, progress: bool, say: Log
) -> dict[str, Path]:
    """With ``compare``: train each comparison model; its name -> its folder."""
    compare_dirs: dict[str, Path] = {}
    if compare:
        for name, variant in comparison_configs(config).items():
            folder = workdir / "compare" / name
            say(f"comparison model {name!r}")
            ensure_model(cat.train_manifest, folder / "model", variant, progress=progress, log=say)
            compare_dirs[name] = folder
    return compare_dirs


def _query_titles(cat: DemoCatalog, report: dict[str, Any]) -> dict[str, str]:
    """The titles of the report's example query items, from the query catalog."""
    wanted = {ex["item_id"] for ex in report.get("examples", [])}
    return {
        it.id: it.title
        for it in load_catalog(cat.query_manifest, validate_images=False).items
        if it.id in wanted
    }


def _baseline_gain(report: dict[str, Any]) -> list[str]:
    """A line on how far ``combined`` leads the keyword filter, with the bootstrap's interval."""
    from stylesearch.evaluation.baselines import BASELINE_METHOD, BASELINE_NAME
    from stylesearch.evaluation.report import GAIN_LABELS, format_gain

    for g in (report.get("bootstrap") or {}).get("gains", []):
        if (g["system"], g["method"]) == (BASELINE_NAME, BASELINE_METHOD):
            parts = [
                f"{label} {format_gain(g[key])}" for label, key in GAIN_LABELS if g[key] is not None
            ]
            return [
                f"`combined` over the {BASELINE_NAME} {BASELINE_METHOD}: " + ", ".join(parts)
                + " (95 % paired bootstrap interval over the queries).",
                "",
            ]  # fmt: skip
    return []


def format_report(result: DemoResult) -> str:
    """The demo's results as a small Markdown report (what ``stylesearch demo`` prints)."""
    from stylesearch.evaluation.report import format_table

    m = result.train_metrics
    report = result.report
    lines = [
        f"## stylesearch demo ({result.workdir})",
        "",
        f"Search quality on {report['n_queries']} test queries (K = {report['k']}, base catalog "
        f"of {report['base_items']} items; {describe_settings(result.tuning['settings'])}, "
        "chosen on the validation queries and recorded in the index):",
        "",
        format_table(report["table"], truth=report["truth"]),
        "",
        *_baseline_gain(report),
        "V-nDCG: looks like the query image (judged by the visual model); T-nDCG: honours the "
        "words (judged by the items' metadata; 'truth': by the clean attributes); "
        "MM = sqrt(V x T).",
        "",
        "Joint model on held-out training items: image -> text R@1 "
        f"{m.get('val_i2t_r1', float('nan')):.3f}, text -> image R@1 "
        f"{m.get('val_t2i_r1', float('nan')):.3f} (gallery {m.get('val_items')}); visual "
        f"model same-item R@1 {result.visual_metrics.get('val_r1', float('nan')):.3f}.",
        "Attribute head on the base catalog, AP vs clean truth: "
        + ", ".join(f"{g} {s['truth_ap']:.3f}" for g, s in result.attributes["groups"].items())
        + ".",
        "",
        "Example searches (`combined`, top 3):",
    ]
    for ex in report.get("examples", []):
        top = ex["methods"].get("combined", [])[:3]
        title = result.query_titles.get(ex["item_id"], ex["item_id"])
        lines.append(f"- {title!r} {ex['words']} -> " + "; ".join(f"{r['title']!r}" for r in top))
    lines += [
        "",
        f"Report: {result.workdir / 'report' / 'report.md'} (charts: methods.png, examples.png)",
        f"Try it: stylesearch serve --index {result.workdir / 'index'}   (it uses the tuned "
        "settings the index records; then open http://127.0.0.1:8000)",
        "Time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()),
    ]
    return "\n".join(lines)
