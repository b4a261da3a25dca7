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

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from stylesearch.catalog.demo import DemoConfig, build_demo_catalog
from stylesearch.catalog.demo_text import VOCABULARY
from stylesearch.catalog.manifest import load_catalog
from stylesearch.config import DEFAULT_METADATA_WEIGHT, Config, load_config, to_dict
from stylesearch.evaluation.attributes import attribute_ap_by_group, load_truth
from stylesearch.model.io import read_model_config
from stylesearch.model.visual import VisualConfig, read_visual_config
from stylesearch.training.checkpoint import list_checkpoints
from stylesearch.training.loop import train
from stylesearch.training.visual import train_visual

DEFAULT_WORKDIR = Path("runs/demo")
STAGES = 7
Log = Callable[[str], None]


def demo_config() -> Config:
    """The packaged training config of the demo (``stylesearch/configs/demo.toml``)."""
    with resources.as_file(resources.files("stylesearch") / "configs" / "demo.toml") as path:
        return load_config(path)


def comparison_configs(config: Config) -> dict[str, Config]:
    """The joint-model variants of the report's comparisons (same data, epochs and seed)."""
    return {
        "triplet": replace(config, loss=replace(config.loss, name="triplet")),
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


def _trained_with(model_dir: Path) -> dict[str, Any] | None:
    try:
        return read_model_config(model_dir).get("extra", {}).get("train_config")
    except (FileNotFoundError, ValueError):
        return None


def _weights(model_dir: Path) -> str:
    return str(read_model_config(model_dir)["weights_sha256"])


def _index_key(index_dir: Path) -> list[Any]:
    """What the tuning and the report depend on in an index: its model, its format and how
    it blended the items' text."""
    from stylesearch.index.store import read_manifest

    manifest = read_manifest(index_dir)
    return [manifest.get(k) for k in ("model_fingerprint", "format_version", "metadata_weight")]


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_cached(path: Path, key: str) -> dict[str, Any] | None:
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached
    return None


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def ensure_model(
    manifest: Path, model_dir: Path, config: Config, *, progress: bool, log: Log
) -> dict[str, Any]:
    """Train unless ``model_dir`` holds a model trained with ``config``; returns its metrics."""
    wanted = to_dict(config)
    trained = _trained_with(model_dir)
    if trained == wanted:
        log(f"reusing {model_dir}")
    elif list_checkpoints(model_dir) and trained is None:
        log(f"resuming the interrupted training in {model_dir}")
        train(manifest, model_dir, config, resume=True, progress=progress, log=log)
    else:
        if trained is not None:
            log(f"{model_dir} was trained with another config; training again")
        else:
            log(f"training on {manifest} ({config.train.epochs} epochs)")
        train(manifest, model_dir, config, overwrite=True, progress=progress, log=log)
    return dict(read_model_config(model_dir)["extra"]["training"]["final_metrics"])


def ensure_visual(
    manifest: Path, out_dir: Path, config: VisualConfig, *, progress: bool, log: Log
) -> dict[str, Any]:
    """Train the visual judge unless ``out_dir`` holds one trained with ``config``."""
    try:
        meta = read_visual_config(out_dir)
    except ValueError:
        meta = None
    if meta is not None and meta["config"] == asdict(config):
        log(f"reusing {out_dir}")
    else:
        log(f"training the visual model on {manifest} ({config.epochs} epochs)")
        train_visual(manifest, out_dir, config, overwrite=True, progress=progress, log=log)
        meta = read_visual_config(out_dir)
    return dict(meta["metrics"]["final"])


def ensure_index(
    model_dir: Path, manifest: Path, out_dir: Path, *, device: str, progress: bool, log: Log
) -> None:
    """Index ``manifest`` with ``model_dir`` unless ``out_dir`` already is that index."""
    from stylesearch.index.build import build_index
    from stylesearch.index.store import IndexFormatError, read_manifest

    try:
        current = read_manifest(out_dir)
    except IndexFormatError:
        current = None
    if (
        current is not None
        and current.get("model_fingerprint") == _weights(model_dir)
        and current.get("catalog") == str(manifest.absolute())
        and current.get("metadata_weight") == DEFAULT_METADATA_WEIGHT
    ):
        log(f"reusing {out_dir}")
        return
    log(f"indexing {manifest} with {model_dir}")
    result = build_index(
        model_dir, manifest, out_dir, backend="exact", device=device, progress=progress
    )
    log(f"{result.count} items, {result.images_per_second:.0f} images/s")


def score_attributes(
    index_dir: Path, base_manifest: Path, truth_path: Path, out_path: Path, *, log: Log
) -> dict[str, Any]:
    """The attribute head's AP by group on the base catalog, from the index's stored
    probabilities with the items' text taken back out."""
    from stylesearch.index.build import head_probs
    from stylesearch.search.searcher import Searcher
    from stylesearch.text.pipeline import TextPipeline

    weights, _, metadata_weight = _index_key(index_dir)
    key = _digest(weights, metadata_weight, str(base_manifest))
    cached = _read_cached(out_path, key)
    if cached is not None:
        log(f"reusing {out_path}")
        return cached
    searcher = Searcher.load(index_dir)
    index, model = searcher.index, searcher.model
    by_id = {it.id: it for it in load_catalog(base_manifest, validate_images=False).items}
    items = [by_id[index.item(row).id] for row in range(index.count)]
    assert model.vocab is not None and model.text_config is not None
    scores = attribute_ap_by_group(
        head_probs(index.attributes, index.meta_offsets, index.meta_words, metadata_weight or 0.0),
        items, load_truth(truth_path), VOCABULARY,
        vocab_words=model.vocab.words, pipeline=TextPipeline(model.text_config),
    )  # fmt: skip
    result = {
        "key": key,
        "model_weights_sha256": weights,
        "catalog": str(base_manifest),
        "items": len(items),
        "groups": {g: s.as_dict() for g, s in scores.items()},
    }
    _write_json(out_path, result)
    log(
        "average precision vs clean truth: "
        + ", ".join(f"{g} {s.truth_ap:.3f}" for g, s in scores.items())
    )
    return result


def ensure_queries(query_manifest: Path, truth: Path, out_dir: Path, *, log: Log) -> dict:
    """The validation and test query files (built once; they are deterministic)."""
    from stylesearch.evaluation.queries import PARTS, build_queries, write_queries

    paths = {part: out_dir / f"{part}.jsonl" for part in PARTS}
    if all(p.is_file() for p in paths.values()):
        log(f"reusing {out_dir}")
        return paths
    items = list(load_catalog(query_manifest, validate_images=False).items)
    truth_rows = load_truth(truth)
    for part, path in paths.items():
        queries = build_queries(items, truth_rows, part=part, seed=0)
        write_queries(queries, path)
        log(f"{len(queries)} {part} queries -> {path}")
    return paths


def tune_search(
    index_dir: Path,
    queries_path: Path,
    visual_dir: Path,
    truth_path: Path,
    out_path: Path,
    *,
    progress: bool,
    log: Log,
) -> dict[str, Any]:
    """``stylesearch tune`` on the validation queries: the chosen settings go into the index
    (where search, serve and the evaluation find them) and into ``out_path`` (the cache)."""
    from stylesearch.evaluation.tuning import COSINE_POWERS, WORD_WEIGHTS, tune_index
    from stylesearch.index.store import read_manifest
    from stylesearch.search.settings import SearchSettings, write_settings

    key = _digest(
        _index_key(index_dir),
        read_visual_config(visual_dir)["weights_sha256"],
        _file_digest(queries_path),
        WORD_WEIGHTS,
        COSINE_POWERS,
        "objective: sqrt(MM x MM-shape), truth floor on every query kind",
    )
    cached = _read_cached(out_path, key)
    if cached is not None:
        recorded = SearchSettings.from_manifest(read_manifest(index_dir))
        if recorded.to_dict() != cached["settings"]:  # a rebuilt index starts untuned
            write_settings(index_dir, _settings_of(cached))
        log(f"reusing {out_path} ({_describe_settings(cached['settings'])})")
        return cached
    log(
        f"trying word weights {', '.join(map(str, WORD_WEIGHTS))} x cosine powers "
        f"{', '.join(map(str, COSINE_POWERS))} on {queries_path}"
    )
    tuning = tune_index(
        index_dir, queries_path, visual_dir, truth_path=truth_path, progress=progress, log=log
    )
    tuning["key"] = key
    _write_json(out_path, tuning)
    log(f"{_describe_settings(tuning['settings'])} (objective {tuning['objective']})")
    return tuning


def _settings_of(tuning: dict[str, Any]) -> Any:
    from stylesearch.search.settings import DEFAULT_SETTINGS, SearchSettings

    s = tuning["settings"]
    return SearchSettings(
        word_weight=s["word_weight"], cosine_power=s["cosine_power"],
        look_weight=s.get("look_weight", DEFAULT_SETTINGS.look_weight), source="tuned",
        tuned_on=s["tuned_on"],
        tuning={k: v for k, v in tuning.items() if k not in ("settings", "table", "key")},
    )  # fmt: skip


def _describe_settings(settings: dict[str, Any]) -> str:
    weights = ", ".join(f"{m} {w:g}" for m, w in settings["word_weight"].items())
    look = settings.get("look_weight")
    return f"word weight {weights}; cosine power {settings['cosine_power']:g}" + (
        "" if look is None else f"; look weight {look:g}"
    )


def evaluate_demo(
    workdir: Path,
    index_dir: Path,
    queries_path: Path,
    visual_dir: Path,
    truth_path: Path,
    tuning: dict[str, Any],
    compare: dict[str, Path],
    *,
    progress: bool,
    log: Log,
) -> dict[str, Any]:
    """The test-set report (``WORKDIR/report``), computed once per set of inputs."""
    from stylesearch.evaluation.report import run_evaluation
    from stylesearch.index.store import read_manifest

    out_dir = workdir / "report"
    key = _digest(
        _index_key(index_dir),
        read_visual_config(visual_dir)["weights_sha256"],
        _file_digest(queries_path),
        tuning["settings"],
        {n: read_manifest(d)["model_fingerprint"] for n, d in compare.items()},
        "shape judge",
    )
    cached = _read_cached(out_dir / "report.json", key)
    if cached is not None:
        log(f"reusing {out_dir}")
        return cached
    log(f"{queries_path} with every method ({_describe_settings(tuning['settings'])})")
    report = run_evaluation(
        index_dir,
        queries_path,
        visual_dir,
        out_dir,
        truth_path=truth_path,
        compare=list(compare.items()),
        name="joint (mbmr)",
        progress=progress,
        log=log,
    )
    report["key"] = key
    _write_json(out_dir / "report.json", report)
    return report


def run_demo(
    workdir: str | Path = DEFAULT_WORKDIR,
    *,
    catalog_config: DemoConfig | None = None,
    config: Config | None = None,
    visual_config: VisualConfig | None = None,
    compare: bool = False,
    device: str = "auto",
    progress: bool = True,
    log: Log | None = None,
) -> DemoResult:
    """Run (or reuse) every demo stage under ``workdir`` and return their results."""
    log = log or _stderr
    workdir = Path(workdir)
    config = config or demo_config()
    config = replace(config, train=replace(config.train, device=device))
    visual_config = replace(visual_config or VisualConfig(), device=device)
    index_device = "cpu" if device == "auto" else device
    seconds: dict[str, float] = {}

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0

    say = _stage(1, "catalog", log)
    say(f"building the demo catalog in {workdir / 'catalog'}")
    with timed("catalog"):
        cat = build_demo_catalog(workdir / "catalog", catalog_config, progress=progress)
    say(
        f"{'reused' if cat.reused else 'built'} ({cat.counts.get('train')} train / "
        f"{cat.counts.get('base')} base / {cat.counts.get('query')} query items) "
        f"in {cat.seconds:.1f} s"
    )

    say = _stage(2, "joint model", log)
    compare_dirs: dict[str, Path] = {}
    with timed("train"):
        metrics = ensure_model(
            cat.train_manifest, workdir / "model", config, progress=progress, log=say
        )
        if compare:
            for name, variant in comparison_configs(config).items():
                folder = workdir / "compare" / name
                say(f"comparison model {name!r}")
                ensure_model(
                    cat.train_manifest, folder / "model", variant, progress=progress, log=say
                )
                compare_dirs[name] = folder

    say = _stage(3, "visual model", log)
    visual_dir = workdir / "visual"
    with timed("visual"):
        visual = ensure_visual(
            cat.train_manifest, visual_dir, visual_config, progress=progress, log=say
        )
    say(
        f"held-out same-item R@1 {visual.get('val_r1', float('nan')):.3f} "
        f"R@10 {visual.get('val_r10', float('nan')):.3f}"
    )

    say = _stage(4, "index", log)
    index_dir = workdir / "index"
    with timed("index"):
        for model_dir, out in [(workdir / "model", index_dir)] + [
            (f / "model", f / "index") for f in compare_dirs.values()
        ]:
            ensure_index(
                model_dir, cat.base_manifest, out, device=index_device, progress=progress, log=say
            )
        attributes = score_attributes(
            index_dir, cat.base_manifest, cat.truth, workdir / "attributes.json", log=say
        )

    say = _stage(5, "queries", log)
    with timed("queries"):
        queries = ensure_queries(cat.query_manifest, cat.truth, workdir / "queries", log=say)

    say = _stage(6, "tuning", log)
    with timed("tuning"):
        tuning = tune_search(
            index_dir, queries["validation"], visual_dir, cat.truth, workdir / "tuning.json",
            progress=progress, log=say,
        )  # fmt: skip

    say = _stage(7, "evaluation", log)
    with timed("evaluation"):
        report = evaluate_demo(
            workdir, index_dir, queries["test"], visual_dir, cat.truth, tuning,
            {n: f / "index" for n, f in compare_dirs.items()}, progress=progress, log=say,
        )  # fmt: skip
    wanted = {ex["item_id"] for ex in report.get("examples", [])}
    titles = {
        it.id: it.title
        for it in load_catalog(cat.query_manifest, validate_images=False).items
        if it.id in wanted
    }
    return DemoResult(
        workdir, cat.counts, metrics, visual, attributes, tuning, report, seconds, titles
    )


def format_report(result: DemoResult) -> str:
    """The demo's results as a small Markdown report (what ``stylesearch demo`` prints)."""
    from stylesearch.evaluation.report import format_table

    m = result.train_metrics
    report = result.report
    lines = [
        f"## stylesearch demo ({result.workdir})",
        "",
        f"Search quality on {report['n_queries']} test queries (K = {report['k']}, base catalog "
        f"of {report['base_items']} items; {_describe_settings(result.tuning['settings'])}, "
        "chosen on the validation queries and recorded in the index):",
        "",
        format_table(report["table"], truth=report["truth"]),
        "",
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
