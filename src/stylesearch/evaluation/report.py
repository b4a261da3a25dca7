"""Write an evaluation's results: ``report.json``, ``report.md``, ``methods.png``, ``examples.png``.

``report.json`` holds the inputs (queries, index, visual model, systems, ``synonyms``: whether
``filter-hard`` covered the learned synonym groups) and one row per (system, method) with
V-nDCG, T-nDCG, MM (and the truth-based T-nDCG / MM), overall and per query kind;
``per_query.jsonl`` every query's nDCGs and returned ids. ``report.md`` is the same as tables;
``methods.png`` a bar chart of the methods; ``examples.png`` a sheet of example queries (query
image and words, top-5 results with titles) for a few methods.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stylesearch.evaluation.baselines import BASELINE_NAME
from stylesearch.evaluation.protocol import EvaluationError, System, summarize
from stylesearch.evaluation.queries import BenchmarkQuery
from stylesearch.evaluation.significance import bootstrap_report

if TYPE_CHECKING:
    from stylesearch.search.searcher import Searcher

__all__ = [
    "GAIN_LABELS", "REPORT_FORMAT", "format_bootstrap", "format_gain", "format_table",
    "write_report",
]  # fmt: skip

EXAMPLE_METHODS = ("visual", "filter", "combined")
#: the report's format: which measures, rows and sections it holds. Raised whenever they
#: change, so that a cache keyed on it (the demo's) writes a report of an older format again.
REPORT_FORMAT = 3
#: the measures the bootstrap reads a gain on: (printed label, key of its entries)
GAIN_LABELS = (("MM", "mm"), ("MM-shape", "mm_shape"))


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def format_table(table: Sequence[dict[str, Any]], *, truth: bool, system: str | None = None) -> str:
    """A Markdown table of (system, method) rows (one system's, or all).

    The shape judge's columns appear when the rows have them (a truth naming source images).
    """
    rows = [r for r in table if system is None or r["system"] == system]
    columns = [("V-nDCG", "v_ndcg"), ("T-nDCG", "t_ndcg"), ("MM", "mm")]
    if truth:
        columns += [("T-nDCG (truth)", "t_ndcg_truth"), ("MM (truth)", "mm_truth")]
    if any(r.get("v_shape") is not None for r in rows):
        columns += [("V-shape", "v_shape"), ("MM-shape", "mm_shape")]
    if any(r.get("category_at_k") is not None for r in rows):
        columns.append(("category@K", "category_at_k"))
    if any(r.get("kept_at_k") is not None for r in rows):
        columns.append(("kept@K", "kept_at_k"))
    lines = [
        "| system | method | " + " | ".join(name for name, _ in columns) + " | search p50 ms |",
        "|---|---|" + "---|" * len(columns) + "---|",
    ]
    for r in rows:
        cells = [
            f"**{_f(r.get(key))}**" if key == "mm" else _f(r.get(key)) for _, key in columns
        ]  # fmt: skip
        lines.append(
            f"| {r['system']} | {r['method']} | " + " | ".join(cells)
            + f" | {r['search_ms_p50']:.1f} |"
        )  # fmt: skip
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:+.2f} %"


def format_gain(g: dict[str, float] | None) -> str:
    """One relative gain of :mod:`~stylesearch.evaluation.significance` with its interval."""
    return "-" if g is None else f"{_pct(g['gain'])} ({_pct(g['low'])} to {_pct(g['high'])})"


def format_bootstrap(report: dict[str, Any]) -> str:
    """``combined``'s own MM (and MM-shape) with its interval, then a Markdown table of its
    relative gain over every other list with the paired bootstrap's interval; empty without
    ``combined``."""
    boot = report.get("bootstrap")
    if not boot:
        return ""
    own = boot["own"]
    labels = [(label, key) for label, key in GAIN_LABELS if own[key]]
    lines = [
        f"`{boot['method']}` itself: "
        + ", ".join(
            f"{label} {own[key]['value']:.3f} ({own[key]['low']:.3f} to {own[key]['high']:.3f})"
            for label, key in labels
        ),
        "",
        "| against | method | " + " | ".join(f"{label} gain" for label, _ in labels) + " |",
        "|---|---|" + "---|" * len(labels),
    ]
    for r in boot["gains"]:
        cells = [format_gain(r[key]) for _, key in labels]
        lines.append(f"| {r['system']} | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _by_type_table(table: Sequence[dict[str, Any]], system: str) -> str:
    """Per query kind: MM, and (when the rows have them) MM-shape and T-nDCG (truth)."""
    rows = [r for r in table if r["system"] == system]
    kinds = sorted({k for r in rows for k in r["by_type"]})
    metrics = [("MM", "mm")]
    for label, key in (("MM-shape", "mm_shape"), ("T (truth)", "t_ndcg_truth")):
        if any(r["by_type"].get(k, {}).get(key) is not None for r in rows for k in kinds):
            metrics.append((label, key))
    heads = [f"{label} {k} ({_count(table, system, k)})" for label, _ in metrics for k in kinds]
    lines = ["| method | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for r in rows:
        cells = [_f(r["by_type"].get(k, {}).get(key)) for _, key in metrics for k in kinds]
        lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _count(table: Sequence[dict[str, Any]], system: str, kind: str) -> int:
    for r in table:
        if r["system"] == system and kind in r["by_type"]:
            return int(r["by_type"][kind]["queries"])
    return 0


def markdown(report: dict[str, Any]) -> str:
    table = report["table"]
    truth = report["truth"]
    main = report["systems"][0]["name"]
    vis = report["visual_model"]
    lines = [
        f"# Evaluation: {report['n_queries']} queries, K = {report['k']}",
        "",
        f"- queries: `{report['queries']}`",
        f"- base catalog: {report['base_items']} items (index `{report['index']}`)",
        f"- visual judge: `{vis['folder']}` ({vis['config']['backbone']}, triplet loss; "
        f"held-out same-item R@1 {_f(vis['metrics'].get('val_r1'))})",
        _synonyms_line(report),
        "- V-nDCG: relevance = the visual judge's cosine (clipped at 0); T-nDCG: fraction of the "
        "requirements the item's metadata words satisfy"
        + ("; T-nDCG (truth): the same against the clean attributes" if truth else "")
        + "; MM = sqrt(V-nDCG x T-nDCG)."
        + (
            " V-shape: relevance = the cosine of the items' uncoloured source images (centred "
            "greyscale pixels, clipped at 0), blind to colour and pattern; MM-shape = "
            "sqrt(V-shape x T-nDCG (truth)); category@K: the share of the K ranks holding the "
            "category the query asks for; kept@K: the share that keep the query item's own "
            "value of each attribute group the query leaves alone (by the truth). `oracle`: "
            "the items meeting every requirement by the truth in the shape judge's order, the "
            "limit; `truth+kept+shape` the same among those that also keep what the words leave "
            "alone."
            if report.get("shape")
            else ""
        ),
        "",
        f"## Methods of `{main}`",
        "",
        format_table(table, truth=truth, system=main),
        "",
        "## MM by query kind",
        "",
        _by_type_table(table, main),
        "",
    ]
    if report.get("bootstrap"):
        boot = report["bootstrap"]
        lines += [
            "## How sure: `combined` against every other list",
            "",
            f"`combined`'s MM over the other list's, minus 1, on all {report['n_queries']} "
            f"queries; in parentheses, the central {boot['level']:.0%} of the same figure over "
            f"{boot['draws']} resamples of the queries, the same resamples for every list (a "
            "paired bootstrap). An interval that holds 0 means these queries cannot tell the "
            "two lists apart.",
            "",
            format_bootstrap(report),
            "",
        ]
    if len(report["systems"]) > 1:
        lines += ["## Every system", ""]
        for s in report["systems"]:
            lines.append(f"- **{s['name']}**: {s['description'] or _describe(s)}")
        lines += ["", format_table(table, truth=truth), ""]
    return "\n".join(lines)


def _synonyms_line(report: dict[str, Any]) -> str:
    """report.md's line saying whether ``filter-hard`` covered the learned synonym groups."""
    if not report["synonyms"]:
        return "- synonyms: off (`--no-synonyms`): `filter-hard` matches the words as given"
    groups = ", ".join(  # the searched systems (the baseline and the oracle use no groups)
        f"{s['name']} {s['model']['synonym_groups']}"
        for s in report["systems"]
        if "synonym_groups" in s["model"]
    )
    return (
        f"- synonyms: on (groups learned with each model: {groups}): a `filter-hard` word also "
        "keeps the items of its group, which the metadata T-nDCG counts as lacking the word; "
        "`--no-synonyms` turns it off"
    )


def _describe(system: dict[str, Any]) -> str:
    m = system.get("model", {})
    parts = [str(m.get("backbone"))]
    if m.get("pretrained"):
        parts.append("ImageNet-initialised")
    if m.get("loss"):
        parts.append(f"{m['loss']} loss")
    if m.get("epochs"):
        parts.append(f"{m['epochs']} epochs")
    return ", ".join(parts) + f" (index `{system.get('index')}`)"


def _chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    table = report["table"]
    main = report["systems"][0]["name"]
    rows = [r for r in table if r["system"] == main]
    others = [r for r in table if r["system"] != main]
    ncols = 2 if others else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4), squeeze=False)
    ax = axes[0][0]
    x = np.arange(len(rows))
    for j, (key, label) in enumerate((("v_ndcg", "V-nDCG"), ("t_ndcg", "T-nDCG"), ("mm", "MM"))):
        ax.bar(x + (j - 1) * 0.27, [r[key] for r in rows], 0.27, label=label)
    ax.set_xticks(x, [r["method"] for r in rows], rotation=20)
    ax.set_ylim(0, 1)
    ax.set_title(f"{main}: nDCG@{report['k']} per method")
    ax.legend(loc="lower right", fontsize=8)
    if others:
        ax = axes[0][1]
        picked = [r for r in table if r["method"] in ("arithmetic", "combined", "keyword-filter")]
        labels = [f"{r['system']}\n{r['method']}" for r in picked]
        colours = ["C2" if r["system"] == main else "C7" for r in picked]
        ax.barh(np.arange(len(picked)), [r["mm"] for r in picked], color=colours)
        ax.set_yticks(np.arange(len(picked)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title("MM: systems compared")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _examples(
    report: dict[str, Any],
    per_query: Sequence[dict[str, Any]],
    queries: Sequence[BenchmarkQuery],
    records: dict[str, tuple[str, str]],
    path: Path,
    *,
    n_examples: int = 3,
    top: int = 5,
) -> list[dict[str, Any]]:
    """A PNG sheet: per example query one row per method (query image + words, top results)."""
    from PIL import Image, ImageDraw

    main = report["systems"][0]["name"]
    methods = [m for m in EXAMPLE_METHODS if m in report["systems"][0]["methods"]]
    chosen: list[BenchmarkQuery] = []
    for kind in ("add", "remove", "replace"):  # one query of each kind, the first of the file
        for q in queries:
            if q.type == kind and len(chosen) < n_examples:
                chosen.append(q)
                break
    lookup = {(r["query_id"], r["method"]): r for r in per_query if r["system"] == main}
    cell, text_h = 96, 40
    width = (top + 1) * (cell + 8) + 8
    height = len(chosen) * len(methods) * (cell + text_h + 8) + 8
    sheet = Image.new("RGB", (width, max(height, 1)), "white")
    draw = ImageDraw.Draw(sheet)
    examples = []
    y = 8
    for q in chosen:
        words = " ".join([*(f"+{w}" for w in q.add), *(f"-{w}" for w in q.remove)])
        example: dict[str, Any] = {
            "query_id": q.query_id,
            "item_id": q.item_id,
            "words": words,
            "methods": {},
        }
        for method in methods:
            r = lookup.get((q.query_id, method))
            ids = r["ids"][:top] if r else []
            example["methods"][method] = [{"id": i, "title": records[i][1]} for i in ids]
            x = 8
            _paste(sheet, str(q.image), x, y, cell)
            draw.text((x, y + cell + 2), f"{words}\n{method}", fill="black")
            for item_id in ids:
                x += cell + 8
                image, title = records[item_id]
                _paste(sheet, image, x, y, cell)
                title = textwrap.shorten(title, 40)
                draw.text((x, y + cell + 2), textwrap.fill(title, 17)[:60], fill="black")
            y += cell + text_h + 8
        examples.append(example)
    sheet.save(path)
    return examples


def _paste(sheet: Any, image_path: str, x: int, y: int, cell: int) -> None:
    from PIL import Image

    try:
        with Image.open(image_path) as im:
            sheet.paste(im.convert("RGB").resize((cell, cell)), (x, y))
    except OSError:
        pass  # a missing image leaves its cell blank in the sheet


def write_report(
    result: dict[str, Any],
    queries: Sequence[BenchmarkQuery],
    out_dir: str | Path,
    *,
    queries_path: str | Path,
    searcher_index: Any,
) -> dict[str, Any]:
    """Write every report file into ``out_dir`` (created); returns the report object."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_query = result["per_query"]
    table = summarize(result)
    ids = {i for r in per_query for i in r["ids"][:5]}
    records = {}
    for row in range(searcher_index.count):
        rec = searcher_index.item(row)
        if rec.id in ids:
            records[rec.id] = (rec.image, rec.title)
    report = {k: v for k, v in result.items() if k != "per_query"}
    report["format"] = REPORT_FORMAT
    report["queries"] = os.fspath(queries_path)
    report["table"] = table
    report["bootstrap"] = bootstrap_report(per_query, report["systems"][0]["name"])
    report["examples"] = _examples(report, per_query, queries, records, out_dir / "examples.png")
    report["files"] = ["report.json", "report.md", "per_query.jsonl", "methods.png", "examples.png"]
    _chart(report, out_dir / "methods.png")
    (out_dir / "report.md").write_text(markdown(report))
    with (out_dir / "per_query.jsonl").open("w") as f:
        for r in per_query:
            f.write(json.dumps(r) + "\n")
    tmp = out_dir / ".report.json.tmp"
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(out_dir / "report.json")
    return report


def run_evaluation(
    index_dir: str | Path,
    queries_path: str | Path,
    visual_dir: str | Path,
    out_dir: str | Path,
    *,
    k: int = 10,
    truth_path: str | Path | None = None,
    compare: Sequence[tuple[str, str | Path]] = (),
    name: str = "main",
    methods: Sequence[str] | None = None,
    baseline: bool = True,
    word_weight: float | None = None,
    cosine_power: float | None = None,
    look_weight: float | None = None,
    synonyms: bool = True,
    shape_source: str | Path | None = None,
    progress: bool = True,
    log: Any = None,
) -> dict[str, Any]:
    """Load the systems, evaluate them on the queries and write the report into ``out_dir``.

    Args:
        index_dir: the main index (its model is loaded from the folder it records).
        compare: ``(name, index_dir)`` of further systems over the same base catalog.
        methods: the search methods to run (default: all six).
        word_weight: weight of the word vectors in query arithmetic (``b = c``), for every
            method (default: the main index's recorded settings, else the measured defaults).
        cosine_power: ``g`` of the soft filter's score ``c~^g * p`` (default: likewise).
        look_weight: the look's share of the query (default: likewise).
            Every system is searched with the main index's settings.
        synonyms: let a ``filter-hard`` word cover its synonym group learned with the model
            (every system alike); off, it matches the word as given, as the judge reads it.
        shape_source: the Fashion-MNIST folder of the shape judge (default: the one in the
            catalog's ``build.json`` beside the truth file).
    """
    from stylesearch.evaluation.attributes import load_truth
    from stylesearch.evaluation.judges import load_shape
    from stylesearch.evaluation.protocol import evaluate_systems
    from stylesearch.evaluation.queries import load_queries
    from stylesearch.model.visual import read_visual_config
    from stylesearch.search.searcher import Searcher

    methods = _checked_methods(methods, [name, *(n for n, _ in compare)])
    queries = load_queries(queries_path)
    read_visual_config(visual_dir)  # a missing judge is an error before any model is loaded
    truth = load_truth(truth_path) if truth_path is not None else None
    # the protocol ranks by every query word, visual or not (grounding_threshold=None): the
    # methods are compared as the paper defines them, on the same words for every model
    main = Searcher.load(
        index_dir,
        word_weight=word_weight,
        cosine_power=cosine_power,
        look_weight=look_weight,
        grounding_threshold=None,
        synonyms=synonyms,
    )
    systems = _systems(main, name, index_dir, compare, methods)
    shape = None
    if truth_path is not None:
        shape = load_shape(
            systems[0].searcher, queries, truth_path, source_dir=shape_source, log=log
        )
    result = evaluate_systems(
        systems, queries, visual_dir, k=k, truth=truth, shape=shape, baseline=baseline,
        progress=progress, log=log,
    )  # fmt: skip
    return write_report(
        result,
        queries,
        out_dir,
        queries_path=queries_path,
        searcher_index=systems[0].searcher.index,
    )


def _checked_methods(methods: Sequence[str] | None, names: list[str]) -> list[str]:
    """The methods to run (default: all); raises EvaluationError for an unknown method or for
    system ``names`` that repeat or take the baseline's name."""
    from stylesearch.search.query import METHODS

    methods = list(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise EvaluationError(f"unknown method(s) {', '.join(unknown)}; choose from {METHODS}")
    if len(set(names)) != len(names) or BASELINE_NAME in names:
        raise EvaluationError(f"system names must be distinct and not {BASELINE_NAME!r}: {names}")
    return methods


def _systems(
    main: Searcher,
    name: str,
    index_dir: str | Path,
    compare: Sequence[tuple[str, str | Path]],
    methods: list[str],
) -> list[System]:
    """The main system, then each ``compare`` index, loaded to search with the main index's
    settings and synonym switch (so that only the models differ)."""
    from stylesearch.search.searcher import Searcher

    return [System(name, Path(index_dir), main, methods)] + [
        System(
            n,
            Path(d),
            Searcher.load(
                d, settings=main.settings, grounding_threshold=None, synonyms=main.synonyms
            ),
            methods,
        )
        for n, d in compare
    ]
