"""A copy of a model folder whose look head is left unfitted, so that its ``p`` comes from the
linear attribute head, as for a model trained with ``look_head = 0``; the image tower, the look
and the vocabulary are the model's own. Index the copy and tune it to measure what the look
head buys (docs/results.md, "What each change buys"):

    .venv/bin/python benchmarks/without_look_head.py --model runs/demo/model \\
        --out runs/exp/no-look-head/model
    stylesearch index --model runs/exp/no-look-head/model \\
        --catalog runs/demo/catalog/base/manifest.jsonl --out runs/exp/no-look-head/index
    stylesearch tune --index runs/exp/no-look-head/index \\
        --queries runs/demo/queries/validation.jsonl --visual runs/demo/visual \\
        --truth runs/demo/catalog/truth.jsonl --dry-run --json
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import _common  # noqa: F401  (the import path)
from stylesearch.model import load_model, save_model
from stylesearch.model.io import read_model_config

#: files of a model folder that the copy keeps as they are (not grounding.json and synonyms.json:
#: they belong to the weights they were measured with)
KEPT = ("metrics.jsonl",)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="the model folder to copy")
    parser.add_argument("--out", type=Path, required=True, help="the copy (must not exist)")
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: give a new folder")
    model = load_model(args.model)
    if model.look_head is None or not model.look_head.is_fitted:
        parser.error(f"{args.model} has no fitted look head: its p is the linear head's already")
    model.look_head.fitted.fill_(False)
    extra = read_model_config(args.model).get("extra")
    save_model(model, args.out, vocab=model.vocab, text_config=model.text_config, extra=extra)
    for name in KEPT:
        if (args.model / name).is_file():
            shutil.copy(args.model / name, args.out / name)
    print(f"{args.out}: {args.model} with its look head unfitted")


if __name__ == "__main__":
    main()
