"""``stylesearch demo``: the whole pipeline on the built-in Fashion-MNIST style catalog.

Stages, each reused when its output is already there and up to date:

1. build the demo catalog (``WORKDIR/catalog``; see :mod:`stylesearch.catalog.demo`);
2. train the joint model on its training split (``WORKDIR/model``, config
   ``stylesearch/configs/demo.toml``); an interrupted training resumes from its checkpoint;
3. score the attribute head on the base catalog against the clean truth and against the noisy
   metadata (``WORKDIR/attributes.json``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from stylesearch.catalog.demo import DemoConfig, build_demo_catalog
from stylesearch.catalog.demo_text import VOCABULARY
from stylesearch.catalog.manifest import load_catalog
from stylesearch.config import Config, load_config, to_dict
from stylesearch.evaluation.attributes import evaluate_attributes, load_truth
from stylesearch.model.io import read_model_config
from stylesearch.training.checkpoint import list_checkpoints
from stylesearch.training.loop import train

DEFAULT_WORKDIR = Path("runs/demo")
Log = Callable[[str], None]


def demo_config() -> Config:
    """The packaged training config of the demo (``stylesearch/configs/demo.toml``)."""
    with resources.as_file(resources.files("stylesearch") / "configs" / "demo.toml") as path:
        return load_config(path)


@dataclass
class DemoResult:
    workdir: Path
    catalog_counts: dict[str, Any]
    train_metrics: dict[str, Any]
    attributes: dict[str, Any]
    seconds: dict[str, float]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _trained_with(model_dir: Path) -> dict[str, Any] | None:
    try:
        return read_model_config(model_dir).get("extra", {}).get("train_config")
    except (FileNotFoundError, ValueError):
        return None


def ensure_model(
    manifest: Path, model_dir: Path, config: Config, *, progress: bool, log: Log
) -> dict[str, Any]:
    """Train unless ``model_dir`` holds a model trained with ``config``; returns its metrics."""
    wanted = to_dict(config)
    trained = _trained_with(model_dir)
    if trained == wanted:
        log(f"[2/3] model: reusing {model_dir}")
    elif list_checkpoints(model_dir) and trained is None:
        log(f"[2/3] model: resuming the interrupted training in {model_dir}")
        train(manifest, model_dir, config, resume=True, progress=progress, log=log)
    else:
        if trained is not None:
            log(f"[2/3] model: {model_dir} was trained with another config; training again")
        else:
            log(f"[2/3] model: training on {manifest}")
        train(manifest, model_dir, config, overwrite=True, progress=progress, log=log)
    return read_model_config(model_dir)["extra"]["training"]["final_metrics"]


def score_attributes(
    model_dir: Path,
    base_manifest: Path,
    truth_path: Path,
    out_path: Path,
    *,
    device: str,
    progress: bool,
    log: Log,
) -> dict[str, Any]:
    """Attribute AP by group on the base catalog (cached in ``out_path`` per model weights)."""
    import stylesearch

    weights = read_model_config(model_dir)["weights_sha256"]
    if out_path.is_file():
        cached = json.loads(out_path.read_text())
        if cached.get("model_weights_sha256") == weights:
            log(f"[3/3] attributes: reusing {out_path}")
            return cached
    log(f"[3/3] attributes: scoring the attribute head on {base_manifest}")
    model = stylesearch.load_model(model_dir, device="cpu" if device == "auto" else device)
    items = list(load_catalog(base_manifest, progress=progress).items)
    scores = evaluate_attributes(
        model, items, load_truth(truth_path), VOCABULARY,
        device=next(model.parameters()).device, progress=progress,
    )  # fmt: skip
    result = {
        "model_weights_sha256": weights,
        "catalog": str(base_manifest),
        "items": len(items),
        "groups": {g: s.as_dict() for g, s in scores.items()},
    }
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out_path)
    return result


def run_demo(
    workdir: str | Path = DEFAULT_WORKDIR,
    *,
    catalog_config: DemoConfig | None = None,
    config: Config | None = None,
    device: str = "auto",
    progress: bool = True,
    log: Log | None = None,
) -> DemoResult:
    """Run (or reuse) every demo stage under ``workdir`` and return their results."""
    log = log or _stderr
    workdir = Path(workdir)
    config = config or demo_config()
    config = replace(config, train=replace(config.train, device=device))
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    log(f"[1/3] catalog: building the demo catalog in {workdir / 'catalog'}")
    cat = build_demo_catalog(workdir / "catalog", catalog_config, progress=progress)
    log(
        f"[1/3] catalog: {'reused' if cat.reused else 'built'} "
        f"({cat.counts.get('train')} train / {cat.counts.get('base')} base / "
        f"{cat.counts.get('query')} query items) in {cat.seconds:.1f} s"
    )
    seconds["catalog"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    metrics = ensure_model(
        cat.train_manifest, workdir / "model", config, progress=progress, log=log
    )
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    attributes = score_attributes(
        workdir / "model",
        cat.base_manifest,
        cat.truth,
        workdir / "attributes.json",
        device=device,
        progress=progress,
        log=log,
    )
    seconds["attributes"] = time.perf_counter() - t0
    return DemoResult(workdir, cat.counts, metrics, attributes, seconds)


def format_report(result: DemoResult) -> str:
    """The demo's results as a small Markdown report."""
    m = result.train_metrics
    lines = [
        f"## stylesearch demo ({result.workdir})",
        "",
        "Validation retrieval (held-out training-catalog items, gallery of "
        f"{m.get('val_items')} items; chance R@1 = {1 / max(1, m.get('val_items', 1)):.4f}):",
        "",
        "| direction | R@1 | R@10 |",
        "|---|---|---|",
        f"| image -> text | {m.get('val_i2t_r1', float('nan')):.3f} | "
        f"{m.get('val_i2t_r10', float('nan')):.3f} |",
        f"| text -> image | {m.get('val_t2i_r1', float('nan')):.3f} | "
        f"{m.get('val_t2i_r10', float('nan')):.3f} |",
        "",
        f"Attribute head on the base catalog ({result.attributes['items']} items), "
        "average precision per group:",
        "",
        "| group | AP vs clean truth | AP vs noisy metadata |",
        "|---|---|---|",
    ]
    for group, s in result.attributes["groups"].items():
        lines.append(f"| {group} | {s['truth_ap']:.3f} | {s['metadata_ap']:.3f} |")
    lines += [
        "",
        "Time per stage: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items()),
    ]
    return "\n".join(lines)
