"""The demo's stages (:mod:`stylesearch.demo`): each one reuses its output when that is already
there and up to date, keyed by a digest of what it depends on, and otherwise (re)builds it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stylesearch.catalog.demo_text import VOCABULARY
from stylesearch.catalog.manifest import load_catalog
from stylesearch.config import Config, to_dict
from stylesearch.evaluation.attributes import attribute_ap_by_group, load_truth
from stylesearch.model.io import current_look_version, read_model_config
from stylesearch.model.visual import VisualConfig, read_visual_config
from stylesearch.training.checkpoint import list_checkpoints
from stylesearch.training.loop import train
from stylesearch.training.refit import refit_look
from stylesearch.training.visual import train_visual

__all__ = [
    "describe_settings",
    "ensure_index",
    "ensure_model",
    "ensure_queries",
    "ensure_visual",
    "evaluate_demo",
    "score_attributes",
    "tune_search",
]

Log = Callable[[str], None]


def _trained_with(model_dir: Path) -> dict[str, Any] | None:
    try:
        return read_model_config(model_dir).get("extra", {}).get("train_config")
    except (FileNotFoundError, ValueError):
        return None


def _weights(model_dir: Path) -> str:
    return str(read_model_config(model_dir)["weights_sha256"])


def _index_key(index_dir: Path) -> list[Any]:
    """What the tuning and the report depend on in an index: its model, its format, how it
    fused the items' text and the version its looks were read at."""
    from stylesearch.index.store import read_manifest

    manifest = read_manifest(index_dir)
    keys = (
        "model_fingerprint", "format_version", "metadata_fusion", "metadata_weight",
        "look_version",
    )  # fmt: skip
    return [manifest.get(k) for k in keys]


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
    """Train unless ``model_dir`` holds a model trained with ``config``, and fit its look again
    when that was read at another version; returns its training metrics."""
    wanted = to_dict(config)
    trained = _trained_with(model_dir)
    stale = trained is not None and _look_is_stale(model_dir)
    if trained == wanted and not stale:
        log(f"reusing {model_dir}")
    elif trained == wanted:
        log(f"{model_dir}'s look was fitted on grids read at another version; fitting it again")
        refit_look(model_dir, catalog=manifest, progress=progress, log=log)
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


def _look_is_stale(model_dir: Path) -> bool:
    """Whether the look of the model in ``model_dir`` was fitted on grids read at another
    version than this stylesearch reads them."""
    return read_model_config(model_dir).get("look_version") != current_look_version(model_dir)


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
    from stylesearch.index.fusion import TextFusion
    from stylesearch.index.store import IndexFormatError, read_manifest

    try:
        current = read_manifest(out_dir)
    except IndexFormatError:
        current = None
    if (
        current is not None
        and current.get("model_fingerprint") == _weights(model_dir)
        and current.get("catalog") == str(manifest.absolute())
        and TextFusion.from_manifest(current) == TextFusion()
        and current.get("look_version") == current_look_version(model_dir)
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
    from stylesearch.index.fusion import TextFusion
    from stylesearch.search.searcher import Searcher
    from stylesearch.text.pipeline import TextPipeline

    index_key = _index_key(index_dir)
    weights = index_key[0]
    key = _digest(index_key, str(base_manifest))
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
        TextFusion.from_manifest(index.manifest).head(
            index.attributes, index.meta_offsets, index.meta_words
        ),
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
    from stylesearch.evaluation.tuning import (
        COSINE_POWERS,
        LOOK_WEIGHTS,
        OBJECTIVE_TIE,
        WORD_WEIGHTS,
        tune_index,
    )
    from stylesearch.index.store import read_manifest
    from stylesearch.search.settings import SearchSettings, write_settings

    key = _digest(
        _index_key(index_dir),
        read_visual_config(visual_dir)["weights_sha256"],
        _file_digest(queries_path),
        WORD_WEIGHTS,
        COSINE_POWERS,
        LOOK_WEIGHTS,
        "objective: sqrt(MM x MM-shape), truth floor on every query kind",
        f"ties within {OBJECTIVE_TIE} go to the words",
    )
    cached = _read_cached(out_path, key)
    if cached is not None:
        recorded = SearchSettings.from_manifest(read_manifest(index_dir))
        if recorded.to_dict() != cached["settings"]:  # a rebuilt index starts untuned
            write_settings(index_dir, _settings_of(cached))
        log(f"reusing {out_path} ({describe_settings(cached['settings'])})")
        return cached
    log(
        f"trying word weights {', '.join(map(str, WORD_WEIGHTS))} x cosine powers "
        f"{', '.join(map(str, COSINE_POWERS))} x look weights "
        f"{', '.join(map(str, LOOK_WEIGHTS))} on {queries_path}"
    )
    tuning = tune_index(
        index_dir, queries_path, visual_dir, truth_path=truth_path, progress=progress, log=log
    )
    tuning["key"] = key
    _write_json(out_path, tuning)
    log(f"{describe_settings(tuning['settings'])} (objective {tuning['objective']})")
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


def describe_settings(settings: dict[str, Any]) -> str:
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
    name: str,
    progress: bool,
    log: Log,
) -> dict[str, Any]:
    """The test-set report (``WORKDIR/report``) of the system ``name`` (the joint model) and the
    ``compare`` systems, computed once per set of inputs."""
    from stylesearch.evaluation.report import REPORT_FORMAT, run_evaluation
    from stylesearch.index.store import read_manifest

    out_dir = workdir / "report"
    key = _digest(
        _index_key(index_dir),
        read_visual_config(visual_dir)["weights_sha256"],
        _file_digest(queries_path),
        tuning["settings"],
        {n: read_manifest(d)["model_fingerprint"] for n, d in compare.items()},
        REPORT_FORMAT,
        name,
    )
    cached = _read_cached(out_dir / "report.json", key)
    if cached is not None:
        log(f"reusing {out_dir}")
        return cached
    log(f"{queries_path} with every method ({describe_settings(tuning['settings'])})")
    report = run_evaluation(
        index_dir,
        queries_path,
        visual_dir,
        out_dir,
        truth_path=truth_path,
        compare=list(compare.items()),
        name=name,
        progress=progress,
        log=log,
    )
    report["key"] = key
    _write_json(out_dir / "report.json", report)
    return report
