"""The demo catalog's datasheet (its ``README.md``): what is in it, how it was made, how noisy.

Written by :func:`stylesearch.catalog.demo.build_demo_catalog` from the build's config, split
plans, counts and per-split attribute statistics.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from stylesearch.catalog.demo_text import GROUPS, VOCABULARY

if TYPE_CHECKING:
    from stylesearch.catalog.demo import DemoConfig, SplitPlan

__all__ = ["SHARD", "datasheet"]

SHARD = 1000  # images per sub-folder

#: per split: attribute group (and "noise") -> value (or noise kind) -> items
Stats = dict[str, dict[str, Counter[str]]]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def datasheet(cfg: DemoConfig, plans: list[SplitPlan], counts: dict[str, Any], stats: Stats) -> str:
    """The catalog's README.md: what is in it, how it was made, how noisy it is."""
    parts = _overview(cfg, plans, counts)
    parts += _attribute_tables(plans, stats)
    parts += _noise_section(cfg, plans, counts, stats)
    parts += _files_section()
    return "\n".join(parts)


def _overview(cfg: DemoConfig, plans: list[SplitPlan], counts: dict[str, Any]) -> list[str]:
    """The title, the splits and the build, up to the attribute tables' heading."""
    n_img = 1 + cfg.views
    split_rows = [
        [p.name, counts[p.name], counts["images_per_split"][p.name],
         f"Fashion-MNIST {p.source}", p.distinct]
        for p in plans
    ]  # fmt: skip
    return [
        "# Demo style catalog (Fashion-MNIST based)",
        "",
        "Built by `stylesearch catalog build-demo`. Each item is one real Fashion-MNIST garment "
        "(Zalando, MIT licence; its category from the label), recoloured with a named colour and "
        "a pattern, keeping the garment's silhouette and shading; RGB, "
        f"{cfg.size} px. Every item has {n_img} images: the main image and {cfg.views} other "
        "view(s) with a small random shift, scale, rotation, brightness and background change.",
        "",
        "![sample items with their titles](samples.png)",
        "",
        "## Splits",
        "",
        _table(["split", "items", "images", "source", "distinct source images"], split_rows),
        "",
        "No Fashion-MNIST image is used by two splits. Base items beyond the available source "
        "images reuse shapes inside the base split, each time with a new colour/pattern "
        "combination. `truth.jsonl` holds every item's clean attributes (and its source image "
        "and noise); training never reads it.",
        "",
        "## Build",
        "",
        f"- seed: {cfg.seed}; source: `{cfg.source}`",
        f"- config: `{json.dumps(cfg.to_dict(), sort_keys=True)}`",
        "",
        "## Attributes",
        "",
    ]


def _attribute_tables(plans: list[SplitPlan], stats: Stats) -> list[str]:
    """One table per attribute group: each value, its synonyms and its count per split."""
    parts: list[str] = []
    for group in GROUPS:
        rows = [
            [value, ", ".join(VOCABULARY[group][value]) or "-"]
            + [stats[p.name][group][value] for p in plans]
            for value in VOCABULARY[group]
        ]
        parts += [f"### {group}", "", _table(
            [group, "synonyms in metadata"] + [p.name for p in plans], rows), ""]  # fmt: skip
    return parts


def _noise_section(
    cfg: DemoConfig, plans: list[SplitPlan], counts: dict[str, Any], stats: Stats
) -> list[str]:
    """The metadata's noise: its rates by config and the missing/wrong counts per split."""
    noise_rows = []
    for p in plans:
        n = counts[p.name]
        missing = stats[p.name]["noise"]["missing"]
        wrong = stats[p.name]["noise"]["wrong"]
        noise_rows.append([p.name, f"{missing} ({missing / n:.1%})", f"{wrong} ({wrong / n:.1%})"])
    return [
        "## Metadata and its noise",
        "",
        "Titles and descriptions come from varied templates and case styles, with words that "
        "are not visual (brands, materials, sizes, fits, care and marketing phrases). Category "
        "words are sometimes plural (sneakers, dresses). Per item, with fixed rates:",
        "",
        f"- synonym for an attribute word (crimson for red): {cfg.synonym_rate:.0%} per word",
        f"- missing attribute (one of category/colour/pattern left out of all text): "
        f"{cfg.missing_rate:.0%}",
        f"- wrong attribute (another value of the group written instead): {cfg.wrong_rate:.0%}",
        "- solid items name their pattern (solid, plain, monochrome) only half of the time, as "
        "real catalogs do (not counted as noise); every other stated attribute is said at "
        "least once in the title or the description.",
        "",
        _table(["split", "missing", "wrong"], noise_rows),
        "",
    ]


def _files_section() -> list[str]:
    return [
        "## Files",
        "",
        "- `{train,base,query}/manifest.jsonl`: catalog manifests "
        '(`{"id", "image", "title", "description", "extra_images", "attributes"}`)',
        f"- `{{train,base,query}}/images/`: PNG images, in sub-folders of {SHARD}",
        '- `truth.jsonl`: `{"id", "split", "category", "colour", "pattern", "source", '
        '"source_index", "noise"}`',
        "- `samples.png`: the first training items with their titles",
        "- `build.json`: the config and its fingerprint (a rebuild with the same config is "
        "skipped)",
        "",
    ]
