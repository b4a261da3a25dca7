"""Search-side candidates for results that keep the query's look, on a query set.

Each candidate is a ``combined`` variant judged by the evaluation protocol (V, T, the shape
judge, MM-shape), beside the index's own ``combined`` under its settings. Use the
**validation** queries: the test set is for the one final run.

- ``project``: the query image's components along the query words' vectors are taken out of
  the image part before the arithmetic, so the cosine stops rewarding the query's own value of
  the changed attribute ("blue" in "this blue dress, but red");
- ``grey-look``: a colour-blind look, the cosine of ImageNet EfficientNet-Lite0 features of the
  greyscale images, rescaled and raised to the index's cosine power, times ``p`` (brute force;
  the look a team could get without training, read against the oracle).

    .venv/bin/python benchmarks/look_sweep.py --index runs/demo/index \\
        --queries runs/demo/queries/validation.jsonl --visual runs/demo/visual \\
        --truth runs/demo/catalog/truth.jsonl
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import _common
from stylesearch.catalog.transforms import IMAGENET_MEAN, IMAGENET_STD
from stylesearch.evaluation.protocol import System
from stylesearch.evaluation.queries import load_queries
from stylesearch.model.inference import embed_image_paths
from stylesearch.model.look import LUMA
from stylesearch.search.query import Query
from stylesearch.search.response import SearchResponse
from stylesearch.search.scoring import (
    ArithmeticConfig,
    compose_query,
    rescale_cosine,
    with_look,
)
from stylesearch.search.searcher import Searcher
from stylesearch.search.topk import attribute_probs, index_removal_scale


class ProjectedWords(Searcher):
    """``combined`` whose image part has the query words' directions taken out (brute force);
    on a model with a look, the look part is added as the searcher adds it."""

    def _query_vector(  # noqa: ANN001
        self,
        query,
        add,
        remove,
        image_vector=None,
        arithmetic=None,
        look_weight=None,
        *,
        item_row=None,
    ):
        visual = Query(image=query.image, item_id=query.item_id, method="visual")
        dim = self.model.config.embed_dim
        # the image's joint part (look weight 0: the look part is left zero)
        image = super()._query_vector(
            visual, [], [], image_vector, look_weight=0.0, item_row=item_row
        )[:dim]
        words = self.word_vectors(add + remove).astype(np.float64)
        if len(words):
            basis, _ = np.linalg.qr(words.T)  # (D, r) orthonormal span of the words
            image = image - basis @ (basis.T @ image)
        cfg = arithmetic or self.arithmetic_for(query.method)
        q = compose_query(image, self.word_vectors(add), self.word_vectors(remove), cfg)
        if self.model.look is None:
            return q
        # the image's look (look weight 1: the joint part is left zero)
        look = super()._query_vector(
            visual, [], [], image_vector, look_weight=1.0, item_row=item_row
        )[dim:]
        weight = self.settings.look_weight if look_weight is None else look_weight
        return with_look(q, look, weight, self.model.look.dim)


class GreyLook(Searcher):
    """Ranks by ``rescale(cos of grey ImageNet features)^g * p`` over the whole index."""

    def __init__(self, base: Searcher, features: np.ndarray, queries: dict[str, np.ndarray]):
        super().__init__(base.index, base.model, settings=base.settings)
        self.features, self.queries = features, queries

    def search(self, query: Query, *, image_vector: np.ndarray | None = None) -> SearchResponse:
        add, remove = self._ids(query.add), self._ids(query.remove)
        cos = self.features @ self.queries[str(query.image)]
        p = attribute_probs(
            self.index.attributes, np.arange(self.index.count), add, remove,
            index_removal_scale(self.index),
        )  # fmt: skip
        score = rescale_cosine(cos, self.cosine_power) * p
        return _common.ranked(self.index, query, score, cos, p)


def to_greyscale(images: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised ``(B, 3, S, S)`` images -> their luma in all three channels, normalised
    the same way."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    luma = torch.tensor(LUMA).view(1, 3, 1, 1)
    rgb = images * std + mean
    return ((rgb * luma).sum(dim=1, keepdim=True).expand_as(rgb) - mean) / std


def stock_features(paths: list, image_size: int, grey: bool = True) -> np.ndarray:
    """Unit ImageNet EfficientNet-Lite0 features of the images, of their greyscale by default."""
    from stylesearch.config import ModelConfig
    from stylesearch.model.towers import build_image_backbone

    net, _ = build_image_backbone(ModelConfig(backbone="efficientnet_lite0", pretrained=True))
    net.eval()

    def encode(images: torch.Tensor) -> torch.Tensor:
        if grey:
            images = to_greyscale(images)
        with torch.no_grad():
            return torch.nn.functional.normalize(net(images).float(), dim=-1)

    return embed_image_paths(encode, paths, image_size=image_size, progress=False, desc="stock")


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_eval_args(parser)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()

    base = Searcher.load(args.index)
    queries = load_queries(args.queries)
    systems = [System("index settings", args.index, base, ("combined",))]
    for w in args.weights:
        cfg = ArithmeticConfig.with_word_weight(w)
        searcher = ProjectedWords(base.index, base.model, settings=base.settings, arithmetic=cfg)
        systems.append(System(f"project, w={w:g}", args.index, searcher, ("combined",)))
    size = base.model.config.image_size
    paths = [Path(base.index.item(r).image) for r in range(base.index.count)]
    qfeat = stock_features([q.image for q in queries], size)
    by_image = {str(q.image): v for q, v in zip(queries, qfeat, strict=True)}
    look = GreyLook(base, stock_features(paths, size), by_image)
    systems.append(System("grey-look", args.index, look, ("combined",)))
    table = _common.judged_rows(base, systems, queries, args)
    print("| system | method | V-nDCG | MM | T (truth) | V-shape | MM-shape | category@K |")
    print("|---|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['system']} | {r['method']} | {r['v_ndcg']:.3f} | {r['mm']:.3f} | "
            f"{r['t_ndcg_truth']:.3f} | {r['v_shape']:.3f} | {r['mm_shape']:.3f} | "
            f"{r['category_at_k']:.3f} |"
        )
    if args.json:
        _common.write_rows(args.json, table)


if __name__ == "__main__":
    main()
