"""Give a trained model another look: the same weights, with the look read another way and fitted
again on the training catalog's images, saved as a new model folder.

The look does not touch the joint model's training (``stylesearch train`` fits it after the last
epoch), so two kinds of look can be compared on one trained model without training it twice:

    .venv/bin/python benchmarks/refit_look.py --model runs/demo/model \\
        --catalog runs/demo/catalog/train/manifest.jsonl --kind silhouette \\
        --out runs/exp/silhouette-model

Then index, tune and evaluate ``--out`` as usual (docs/results.md gives the commands).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import _common
from stylesearch.catalog.manifest import load_catalog
from stylesearch.config import LOOK_KINDS
from stylesearch.model import JointModel, load_model, save_model
from stylesearch.model.io import read_model_config
from stylesearch.training.look import fit_look


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--model", type=Path, required=True, help="a trained model folder")
    parser.add_argument("--catalog", type=Path, required=True, help="the training manifest")
    parser.add_argument("--kind", choices=LOOK_KINDS, default=LOOK_KINDS[0])
    parser.add_argument("--dim", type=int, default=None, help="look dimension (default: kept)")
    parser.add_argument("--out", type=Path, required=True, help="the new model folder")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose a new folder")

    old = load_model(args.model)
    if old.look_head is not None and old.look_head.is_fitted:
        raise SystemExit(
            f"{args.model} has a look head fitted on its look's grids, which a new look would "
            "leave stale; train a model with the new look_kind instead (stylesearch train)"
        )
    dim = args.dim if args.dim is not None else (old.look.dim if old.look is not None else 32)
    config = dataclasses.replace(old.config, look_kind=args.kind, look_dim=dim)
    new = JointModel(config, old.vocab_size, load_backbone_weights=False)
    kept = {k: v for k, v in old.state_dict().items() if not k.startswith("look.")}
    missing, unexpected = new.load_state_dict(kept, strict=False)
    if unexpected or any(not k.startswith("look.") for k in missing):
        raise SystemExit(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    new.eval()

    items = load_catalog(args.catalog, progress=True).items
    t0 = time.perf_counter()
    fit_look(new, [it.image for it in items], progress=True)
    print(f"look ({args.kind}, {dim} dims) fitted on {len(items)} images in "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    extra = read_model_config(args.model).get("extra", {})
    save_model(new, args.out, vocab=old.vocab, text_config=old.text_config, extra=extra)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
