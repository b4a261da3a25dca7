"""How far each look can get: shape descriptors under perfect attributes and under ``p``.

The shape judge (docs/evaluation.md) scores a result list by the cosine of the uncoloured source
garments' pixels. This script separates the two things a soft-filter method needs for it: the
*look* (which of the items that honour the words look most like the query) and the *attributes*
(which items honour the words). For every descriptor it ranks the base catalog two ways:

- ``truth gate``: only the items that meet every requirement by the clean truth, ordered by the
  descriptor's cosine. T-nDCG (truth) is 1; V-shape is the most this descriptor can give with
  perfect attributes (the oracle row is this with the judge itself as the descriptor);
- ``p x c~^g``: the product the ``filter`` / ``combined`` methods rank by, with the index's own
  ``p`` and the cosine powers given.

Descriptors: the model's joint embedding ``f_I``, its look, the two mixed as the index stores
them, ImageNet EfficientNet-Lite0 features of the colour and of the greyscale image (``--stock``),
the feature map of the greyscale image after the first ``--map-blocks`` blocks of the model's own
fine-tuned EfficientNet-Lite0 and of the ImageNet one (``--maps``: spatial features, before the
pooling that makes ``f_I`` blind to where things are), the look's grid projected by a same-item
LDA instead of its principal components (``--lda TRAIN_MANIFEST``: directions along which an
item's main image and its first extra view agree, learned from the training catalog), the look
beside the greyscale ImageNet features at weights ``--mix-stock B ...``, and four ceilings
computed from the
truth's source garments (the renderer's inputs, which no system sees): the silhouette (the
renderer's alpha), the silhouette times the renderer's shading (what the luminance of a plain
garment carries), the same with the shading stretched from the renderer's floor as the look
stretches its own (``stretch_shading``), and the judge's own pixels. Use the **validation** queries.

    .venv/bin/python benchmarks/shape_caps.py --index runs/demo/index \\
        --queries runs/demo/queries/validation.jsonl --truth runs/demo/catalog/truth.jsonl \\
        --stock --maps --powers 4 8 16
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import _common
from look_sweep import stock_features, to_greyscale
from stylesearch.catalog.demo_render import SHADE_FLOOR, silhouette, upscale
from stylesearch.catalog.fashion_mnist import load_set
from stylesearch.config import ModelConfig
from stylesearch.evaluation.attributes import load_truth
from stylesearch.evaluation.judges import Judge, load_shape
from stylesearch.evaluation.metrics import dcg, ideal_dcg, mm, visual_relevance
from stylesearch.evaluation.queries import load_queries
from stylesearch.evaluation.shape import _read_sources, source_folder
from stylesearch.model.inference import embed_image_paths
from stylesearch.model.silhouette import FLOOR_LEVEL
from stylesearch.model.towers import build_image_backbone
from stylesearch.search.searcher import Searcher
from stylesearch.search.topk import attribute_probs, index_removal_scale


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centred_pair(base: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets centred on the base catalog's mean (as the judge centres on its split's)."""
    mu = base.mean(axis=0)
    return base - mu, queries - mu


def source_greys(truth_path: Path, size: int) -> Callable[[list[str]], np.ndarray]:
    """A function of item ids -> their source garments' grey images, upscaled as the renderer
    does (:func:`~stylesearch.catalog.demo_render.upscale`): ``(n, size, size)`` in [0, 1]."""
    sources = _read_sources(truth_path)
    folder = source_folder(truth_path)
    sets = {name: load_set(folder, name)[0] for name in {s.source for s in sources.values()}}

    def grey(item_ids: list[str]) -> np.ndarray:
        return np.stack(
            [upscale(sets[sources[i].source][sources[i].index], size) for i in item_ids]
        )  # fmt: skip

    return grey


def source_descriptors(
    truth_path: Path, ids: list[str], size: int
) -> dict[str, Callable[[list[str]], np.ndarray]]:
    """The renderer's silhouette, silhouette x shading and silhouette x shading stretched from
    the renderer's floor to [``FLOOR_LEVEL``, 1] of each item's source garment."""
    grey = source_greys(truth_path, size)

    def alpha(item_ids: list[str]) -> np.ndarray:
        return silhouette(grey(item_ids)).reshape(len(item_ids), -1)

    def shaded(item_ids: list[str]) -> np.ndarray:
        g = grey(item_ids)
        return (silhouette(g) * (SHADE_FLOOR + (1.0 - SHADE_FLOOR) * g)).reshape(len(g), -1)

    def stretched(item_ids: list[str]) -> np.ndarray:
        # the renderer's shading stretched from its floor as the look's stretch_shading does
        g = grey(item_ids)
        return (silhouette(g) * (FLOOR_LEVEL + (1.0 - FLOOR_LEVEL) * g)).reshape(len(g), -1)

    return {
        "source silhouette": alpha,
        "source silhouette x shading": shaded,
        "source silhouette x stretched shading": stretched,
    }


def grey_feature_maps(backbone: Any, paths: list[Path], size: int, blocks: int) -> np.ndarray:
    """Flattened activations of an EfficientNet-Lite0 backbone's first ``blocks`` blocks on the
    greyscale images ``(N, C * H * W)``."""
    net = backbone.net

    def encode(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x = to_greyscale(images) * backbone.input_scale + backbone.input_shift
            x = net._swish(net._bn0(net._conv_stem(x)))
            for block in net._blocks[:blocks]:
                x = block(x, drop_connect_rate=0.0)
            return x.flatten(1)

    backbone.eval()
    return embed_image_paths(encode, paths, image_size=size, progress=False, desc="maps")


def lda_looks(
    model: Any, train_manifest: Path, base_paths: list[Path], q_paths: list[Path]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The look's grids (:meth:`ShapeLook.grid`) of the base and query images, projected on the
    directions that most separate items relative to how much an item's main image and its first
    extra view differ: the generalized eigenvectors of the total against the within-item
    scatter, in the top ``d0`` principal components of the training grids (ridge ``reg``)."""
    from stylesearch.catalog.manifest import load_catalog

    size = model.config.image_size

    def grids(paths: list[Path]) -> np.ndarray:
        out = embed_image_paths(model.look.grid, paths, image_size=size, batch_size=512)
        return out.astype(np.float64)

    items = [it for it in load_catalog(train_manifest).items if it.extra_images]
    main, extra = (
        grids([Path(it.image) for it in items]),
        grids([Path(it.extra_images[0]) for it in items]),
    )
    mu = main.mean(axis=0)
    _, _, vt = np.linalg.svd(main - mu, full_matrices=False)
    base, queries = grids(base_paths) - mu, grids(q_paths) - mu
    rows = {}
    for d0, reg in ((64, 0.1), (128, 0.1), (256, 0.1), (128, 0.001)):
        x, y = (main - mu) @ vt[:d0].T, (extra - mu) @ vt[:d0].T
        total = np.cov(np.vstack([x, y]).T)
        within = (x - y).T @ (x - y) / (2 * len(x))
        within += reg * np.trace(within) / d0 * np.eye(d0)
        inv = np.linalg.inv(np.linalg.cholesky(within))
        w, v = np.linalg.eigh(inv @ total @ inv.T)
        proj = vt[:d0].T @ inv.T @ v[:, np.argsort(-w)[:32]]
        rows[f"look grid, same-item LDA (d0 {d0}, ridge {reg:g}, 32 dims)"] = (
            base @ proj,
            queries @ proj,
        )
    return rows


class DescriptorBench:
    """The queries, gains and ``p`` the rows are judged with; :meth:`add` judges one descriptor.

    Args:
        index: the index folder (its model, vectors and ``p``).
        queries: a query file (use the validation queries).
        truth: the demo catalog's truth file, which names each item's source garment.
        k: the cut-off.
        powers: the cosine powers of the ``p x c~^g`` rows.
    """

    def __init__(
        self, index: Path, queries: Path, truth: Path, k: int, powers: list[float]
    ) -> None:
        self.searcher = s = Searcher.load(index)
        self.k, self.powers, self.truth_path = k, powers, truth
        ix, n = s.index, s.index.count
        self.queries = load_queries(queries)
        self.truth = load_truth(truth)
        shape = load_shape(s, self.queries, truth)
        if shape is None:
            raise SystemExit(f"{truth} does not name every item's source garment")
        self.shape = shape
        self.ids = [ix.item(r).id for r in range(n)]
        self.qids = [q.item_id for q in self.queries]
        groups = sorted({g for i in self.ids for g in self.truth[i]})
        tg = {g: np.array([self.truth[i].get(g) for i in self.ids], dtype=object) for g in groups}
        judge = Judge(np.zeros((n, 0)), lambda w: np.zeros(0, np.int64), tg, n)
        self.t_gain = np.array([judge.truth_gains(q) for q in self.queries])
        self.s_gain = visual_relevance(shape.queries @ shape.base.T)
        self.p = np.array(
            [attribute_probs(ix.attributes, np.arange(n), s._ids(q.add), s._ids(q.remove),
                             index_removal_scale(ix))
             for q in self.queries]
        )  # fmt: skip
        self.ideal_s = np.array([ideal_dcg(g, k) for g in self.s_gain])
        self.ideal_t = np.array([ideal_dcg(g, k) for g in self.t_gain])
        self.base_paths = [Path(ix.item(r).image) for r in range(n)]
        self.query_paths = [Path(q.image) for q in self.queries]
        self.rows: list[tuple[str, str, tuple[float, float, float]]] = []

    def judged(self, ranks: list[np.ndarray]) -> tuple[float, float, float]:
        """V-shape, T-nDCG (truth) and MM-shape of one ranked list per query."""
        k = self.k
        vs = np.array([dcg(self.s_gain[i][r], k) / self.ideal_s[i] for i, r in enumerate(ranks)])
        tt = np.array([dcg(self.t_gain[i][r], k) / self.ideal_t[i] for i, r in enumerate(ranks)])
        return float(vs.mean()), float(tt.mean()), float(mm(vs.mean(), tt.mean()))

    def add(self, name: str, base: np.ndarray, qv: np.ndarray) -> None:
        """Judge the descriptor ``base`` (base items) / ``qv`` (queries) both ways."""
        k = self.k
        cos = unit_rows(qv) @ unit_rows(base).T
        gated = []
        for i in range(len(self.queries)):
            meets = np.flatnonzero(self.t_gain[i] >= 1.0)
            gated.append(meets[np.argsort(-cos[i][meets], kind="stable")][:k])
        self.rows.append((name, "truth gate", self.judged(gated)))
        for g in self.powers:
            score = ((1.0 + cos) / 2.0) ** g * self.p
            ranks = [np.argsort(-x, kind="stable")[:k] for x in score]
            self.rows.append((name, f"p x c~^{g:g}", self.judged(ranks)))
        print(f"shape_caps: {name} done", flush=True)

    def add_sources(self) -> None:
        """The ceilings computed from the source garments, and the judge itself (the oracle)."""
        size = self.searcher.model.config.image_size
        for name, fn in source_descriptors(self.truth_path, self.ids, size).items():
            self.add(name, *centred_pair(fn(self.ids), fn(self.qids)))
        self.add("the judge (oracle)", self.shape.base, self.shape.queries)

    def print_table(self) -> None:
        print(f"\n{len(self.queries)} queries, K = {self.k}\n")
        print("| descriptor | ranking | V-shape | T-nDCG (truth) | MM-shape |")
        print("|---|---|---|---|---|")
        for name, how, (vs, tt, mms) in self.rows:
            print(f"| {name} | {how} | {vs:.3f} | {tt:.3f} | {mms:.3f} |")


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_eval_args(parser, visual=False)
    parser.add_argument("--powers", type=float, nargs="+", default=[4.0, 8.0])
    parser.add_argument("--stock", action="store_true", help="add ImageNet feature rows")
    parser.add_argument("--maps", action="store_true", help="add feature-map rows")
    parser.add_argument("--map-blocks", type=int, default=5, help="blocks before the map")
    parser.add_argument("--lda", type=Path, help="add same-item LDA rows fitted on this catalog")
    parser.add_argument(
        "--mix-stock", type=float, nargs="*", default=[],
        help="add rows of the look and greyscale ImageNet features, the latter at these weights",
    )  # fmt: skip
    args = parser.parse_args()
    bench = DescriptorBench(args.index, args.queries, args.truth, args.k, args.powers)
    s, add = bench.searcher, bench.add
    index = s.index
    dim = s.model.config.embed_dim
    vec = np.asarray(index.vectors, dtype=np.float64)
    qvec = np.stack([s.encode_image(q.image) for q in bench.queries]).astype(np.float64)
    add("joint f_I", vec[:, :dim], qvec[:, :dim])
    if vec.shape[1] > dim:
        add("look", vec[:, dim:], qvec[:, dim:])
        add("f_I and look, as indexed", vec, qvec)
    size = s.model.config.image_size
    base_paths, q_paths = bench.base_paths, bench.query_paths
    if args.lda is not None:
        for name, (base, qv) in lda_looks(s.model, args.lda, base_paths, q_paths).items():
            add(name, base, qv)
    if args.mix_stock:
        grey_b, grey_q = stock_features(base_paths, size), stock_features(q_paths, size)
        look_b, look_q = unit_rows(vec[:, dim:]), unit_rows(qvec[:, dim:])
    for b in args.mix_stock:
        add(
            f"look and greyscale ImageNet features at {b:g}",
            np.hstack([look_b * np.sqrt(1 - b), unit_rows(grey_b) * np.sqrt(b)]),
            np.hstack([look_q * np.sqrt(1 - b), unit_rows(grey_q) * np.sqrt(b)]),
        )
    if args.stock:
        for grey in (False, True):
            name = "ImageNet features of the " + ("greyscale" if grey else "colour") + " image"
            add(name, stock_features(base_paths, size, grey), stock_features(q_paths, size, grey))
    if args.maps:
        imagenet, _ = build_image_backbone(
            ModelConfig(backbone="efficientnet_lite0", pretrained=True)
        )
        for who, backbone in (("the model's", s.model.image_backbone), ("ImageNet", imagenet)):
            if not hasattr(backbone, "input_scale"):
                print(f"shape_caps: {who} backbone is not EfficientNet-Lite0; no map row")
                continue
            maps = [
                grey_feature_maps(backbone, p_, size, args.map_blocks)
                for p_ in (base_paths, q_paths)
            ]
            add(f"{who} feature map, greyscale (blocks 1-{args.map_blocks})", *centred_pair(*maps))
    bench.add_sources()
    bench.print_table()


if __name__ == "__main__":
    main()
