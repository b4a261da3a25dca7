"""A learned look: a small CNN trained on the catalog's plain items to take colour and pattern off.

The look (``stylesearch.model.look``, its shading kinds) reads a garment's shaded silhouette with
fixed image operations. This script asks whether a network trained on the catalog's own images
reads it better. It needs no truth to train:

1. **sources**: the training items whose title or description holds one of ``--plain-words``
   (``solid``, ``plain``), whose main colour is neither near black nor near white. For each, the
   garment's alpha, its relative shading (brightest channel over the garment's main colour) and
   the background are read from the image (``decompose``);
2. **inputs**: each source recoloured at random (a tenth of them near black, a tenth near white)
   and overlaid with a procedural pattern at random (stripes at any angle, checks, dots,
   zigzags, rosettes; a second tone lighter, darker or of another colour), composited on the
   photo's own background; a tenth are left as they are;
3. **target**: the source's own alpha x shading stretched from the sources' shading floor to
   [``FLOOR_LEVEL``, 1] (as the look stretches its own), at the image size;
4. a CNN (``LookNet``) learns input -> target (mean squared error, AdamW, one-cycle schedule),
   in two variants: one gives the whole silhouette; the other also reads the look's garment mask
   and the garment's unfiltered relative shading, and gives only the shading inside that mask
   (the error is taken there), which is then multiplied by the mask.

It then judges, on the **validation** queries, the look's own grid, each learned grid and the
masked one beside the look's, with the rows of ``shape_caps.py`` (truth gate and ``p x c~^g``),
its ceilings, and one more: the look's own mask filled with the source garment's stretched
shading (what a perfect shading estimate inside the present mask would give). About 10 minutes
on two cores at the default 600 steps.

    .venv/bin/python benchmarks/learned_look.py --index runs/demo/index \\
        --queries runs/demo/queries/validation.jsonl --truth runs/demo/catalog/truth.jsonl \\
        --catalog runs/demo/catalog/train/manifest.jsonl
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import _common
from shape_caps import DescriptorBench, centred_pair, source_greys, unit_rows
from stylesearch.catalog.manifest import load_catalog
from stylesearch.model.inference import embed_image_paths
from stylesearch.model.look import GRID, LUMA
from stylesearch.model.silhouette import (
    FLOOR_LEVEL,
    _dilate,
    _erode,
    background,
    fill_thin_holes,
    garment_mask,
    shading_floor,
)

PATTERNS = ("none", "stripes", "checks", "dots", "zigzag", "rosette")
PATTERN_ODDS = (0.15, 0.2, 0.15, 0.15, 0.15, 0.2)


def decompose(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Images ``(B, 3, S, S)`` RGB 0..255 -> alpha ``(B, 1, S, S)``, relative shading (spread one
    pixel past the garment's edge), background ``(B, 3, 1, 1)`` and main colour ``(B, 3, 1, 1)``
    (the mean of the garment's lightest fifth; NaN for an image with almost no garment)."""
    bg = background(x)
    filled = fill_thin_holes(garment_mask(x), 3)
    inner = _erode(filled, 1)
    peak = x.amax(1, keepdim=True)
    colours = []
    for b in range(len(x)):
        tones = peak[b][inner[b] > 0]
        if tones.numel() < 20:
            colours.append(torch.full((3,), float("nan")))
            continue
        light = ((peak[b] >= torch.quantile(tones, 0.8)) & (inner[b] > 0))[0]
        colours.append(x[b][:, light].mean(1))
    c = torch.stack(colours)[:, :, None, None]
    s = (peak / c.amax(1, keepdim=True)).clamp(0, 1) * inner
    s = torch.where(inner > 0, s, _dilate(s, 2))
    ring = _dilate(filled, 1) * (1 - inner)
    tone = c * s
    share = ((x - bg) * (tone - bg)).sum(1, keepdim=True)
    share = share / ((tone - bg) ** 2).sum(1, keepdim=True).clamp_min(1.0)
    alpha = torch.where(inner > 0, torch.ones_like(s), share.clamp(0, 1) * ring)
    return alpha, s, bg, c


def pattern(size: int, rng: np.random.Generator) -> Tensor:
    """Where a random pattern's second tone goes: ``(size, size)`` in [0, 1]."""
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    kind = rng.choice(PATTERNS, p=PATTERN_ODDS)

    def band(v: Tensor, period: float, width: float) -> Tensor:
        return (width / 2 - (torch.remainder(v, period) - period / 2).abs() + 0.5).clamp(0, 1)

    if kind == "none":
        return torch.zeros(size, size)
    period = rng.uniform(5, 15)
    if kind in ("stripes", "zigzag"):
        th = rng.choice([0, math.pi / 2]) if rng.random() < 0.7 else rng.uniform(0, math.pi)
        u = xx * math.cos(th) + yy * math.sin(th)
        v = -xx * math.sin(th) + yy * math.cos(th)
        if kind == "zigzag":
            px, amp = rng.uniform(6, 16), rng.uniform(2, 6)
            u = u + amp * (torch.remainder(v + rng.uniform(0, px), px) - px / 2).abs() / (px / 2)
        return band(u + rng.uniform(0, period), period, rng.uniform(0.3, 0.6) * period)
    if kind == "checks":
        ax = band(xx + rng.uniform(0, period), period, period / 2)
        ay = band(yy + rng.uniform(0, period), period, period / 2)
        return ax + ay - 2 * ax * ay
    period = rng.uniform(6, 15)
    y = yy + rng.uniform(0, period)
    shift = torch.remainder(torch.floor(y / period), 2) * period / 2 if rng.random() < 0.5 else 0
    x = xx + rng.uniform(0, period) + shift
    ly, lx = torch.remainder(y, period) - period / 2, torch.remainder(x, period) - period / 2
    if kind == "dots":
        r = rng.uniform(1.0, period / 3.5)
        return (r - (lx**2 + ly**2).sqrt() + 0.5).clamp(0, 1)
    n, t0 = int(rng.integers(4, 7)), rng.uniform(0, 2 * math.pi)
    rho, r = rng.uniform(0.15, 0.25) * period, rng.uniform(0.1, 0.16) * period
    w = torch.zeros(size, size)
    for k in range(n):
        a = t0 + 2 * math.pi * k / n
        d = ((lx - rho * math.cos(a)) ** 2 + (ly - rho * math.sin(a)) ** 2).sqrt()
        w = torch.maximum(w, (r - d + 0.5).clamp(0, 1))
    centre = (0.6 * r - (lx**2 + ly**2).sqrt() + 0.5).clamp(0, 1)
    return torch.maximum(w, rng.uniform(0.3, 1.0) * centre)


def colour(rng: np.random.Generator) -> Tensor:
    """A random garment colour (RGB 0..255): a tenth near black, a tenth near white."""
    u = rng.random()
    if u < 0.12:
        return torch.full((3,), rng.uniform(10, 60)) + torch.from_numpy(rng.uniform(-4, 4, 3))
    if u < 0.24:
        return torch.full((3,), rng.uniform(220, 252)) + torch.from_numpy(rng.uniform(-3, 3, 3))
    return torch.from_numpy(rng.uniform(0, 255, 3))


def render(x: Tensor, alpha: Tensor, s: Tensor, bg: Tensor, rng: np.random.Generator) -> Tensor:
    """The sources ``x`` recoloured and patterned at random (a tenth kept as they are)."""
    out = x.clone()
    size = x.shape[-1]
    for b in range(len(x)):
        if rng.random() < 0.1:
            continue
        c1, t = colour(rng).float(), rng.random()
        if t < 0.4:
            c2 = c1 + (255 - c1) * rng.uniform(0.4, 0.85)
        elif t < 0.8:
            c2 = c1 * rng.uniform(0.25, 0.6)
        else:
            c2 = colour(rng).float()
        w = pattern(size, rng)[None]
        garment = (c1[:, None, None] * (1 - w) + c2[:, None, None] * w) * s[b]
        back = torch.where(alpha[b] > 0, bg[b].expand(3, size, size), x[b])
        out[b] = (alpha[b] * garment + (1 - alpha[b]) * back).clamp(0, 255).round()
    return out


class LookNet(nn.Module):
    """RGB ``(B, 3, S, S)`` 0..255 -> the stretched shaded silhouette ``(B, 1, S, S)``.

    ``masked=False``: it reads the image and its difference from the background, and gives the
    whole silhouette. ``masked=True``: it also reads the look's garment mask and the garment's
    unfiltered relative shading (``decompose``), and gives the shading, which the caller
    multiplies by the mask. Dilated convolutions at half size, the output upsampled."""

    def __init__(self, masked: bool, width: int = 32) -> None:
        super().__init__()
        self.masked = masked
        self.stem = nn.Conv2d(8 if masked else 6, width, 4, stride=2, padding=1)
        layers: list[nn.Module] = []
        for d in (1, 2, 4, 8, 2, 1):
            layers += [nn.ReLU(), nn.Conv2d(width, width, 3, padding=d, dilation=d)]
        self.body = nn.Sequential(*layers, nn.ReLU(), nn.Conv2d(width, 1, 1))

    def inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The network's input channels and the look's garment mask of images ``x``."""
        alpha, s, bg, _ = decompose(x)
        mask = (alpha >= 1).float()
        z = torch.cat([x / 255.0 - 0.5, (x - bg) / 128.0], 1)
        if self.masked:
            z = torch.cat([z, mask, torch.nan_to_num(s) * mask], 1)
        return z, mask

    def forward(self, z: Tensor) -> Tensor:
        y = self.body(self.stem(z))
        return torch.sigmoid(F.interpolate(y, size=z.shape[-2:], mode="bilinear"))

    @torch.no_grad()
    def grid(self, x: Tensor) -> Tensor:
        """The learned look's grid ``(B, GRID * GRID)`` of images ``x``."""
        z, mask = self.inputs(x)
        out = self(z) * mask if self.masked else self(z)
        return F.interpolate(out, size=(GRID, GRID), mode="area").flatten(1)


def plain_sources(model, catalog: Path, words: list[str]) -> Tensor:
    """RGB 0..255 ``(N, 3, S, S)`` of the catalog's main images whose text holds one of
    ``words``."""
    pattern_ = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)
    items = [
        it for it in load_catalog(catalog).items if pattern_.search(f"{it.title} {it.description}")
    ]
    size = model.config.image_size

    def rgb(images: Tensor) -> Tensor:
        return (model.look._rgb(images) * 255.0).flatten(1)

    x = embed_image_paths(rgb, [Path(it.image) for it in items], image_size=size)
    return torch.from_numpy(x.reshape(len(items), 3, size, size))


def train(x: Tensor, masked: bool, steps: int, seed: int) -> LookNet:
    """Fit a ``LookNet`` on the plain sources ``x``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    alpha, s, bg, c = decompose(x)
    lum = (c[:, :, 0, 0] * torch.tensor(LUMA)).sum(1)
    keep = torch.isfinite(lum) & (lum > 40) & (lum < 225)
    x, alpha, s, bg = x[keep], alpha[keep], s[keep], bg[keep]
    floor = shading_floor(s[alpha >= 1])
    stretched = FLOOR_LEVEL + (1 - FLOOR_LEVEL) * ((s - floor) / (1 - floor)).clamp(0, 1)
    # the masked net is judged inside the garment only; the other gives the whole silhouette
    target, weight = (stretched, (alpha >= 1).float()) if masked else (alpha * stretched, None)
    print(f"learned_look: {len(x)} sources, shading floor {floor:.3f}", flush=True)
    net = LookNet(masked)
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(x), 64))
        z, _ = net.inputs(render(x[idx], alpha[idx], s[idx], bg[idx], rng))
        err = (net(z) - target[idx]) ** 2
        loss = err.mean() if weight is None else (err * weight[idx]).sum() / weight[idx].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"learned_look: step {step} loss {loss.item():.4f} "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    return net.eval()


def main() -> None:
    parser = _common.parser(__doc__)
    _common.add_eval_args(parser, visual=False)
    parser.add_argument("--catalog", type=Path, required=True, help="the training manifest")
    parser.add_argument("--plain-words", nargs="+", default=["solid", "plain"])
    parser.add_argument("--steps", type=int, default=600, help="training steps of 64 images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--powers", type=float, nargs="+", default=[4.0, 16.0])
    parser.add_argument("--mix", type=float, nargs="*", default=[0.3, 0.5],
                        help="weights of the masked net's grid beside the look's own")  # fmt: skip
    args = parser.parse_args()
    bench = DescriptorBench(args.index, args.queries, args.truth, args.k, args.powers)
    model = bench.searcher.model
    size = model.config.image_size
    sources = plain_sources(model, args.catalog, args.plain_words)

    def rgb(images: Tensor) -> Tensor:
        return model.look._rgb(images) * 255.0

    def centred(fn: Callable[[Tensor], Tensor]) -> tuple[np.ndarray, np.ndarray]:
        b, q = (embed_image_paths(fn, paths, image_size=size).astype(np.float64)
                for paths in (bench.base_paths, bench.query_paths))  # fmt: skip
        mu = b.mean(axis=0)
        return unit_rows(b - mu), unit_rows(q - mu)

    look = centred(model.look.grid)
    bench.add("the look's grid (hand-made)", *look)
    for masked in (False, True):
        net = train(sources, masked, args.steps, args.seed)
        grids = centred(lambda images, net=net: net.grid(rgb(images)))
        name = "the learned grid" + (", inside the look's mask" if masked else "")
        bench.add(name, *grids)
    for w in args.mix:
        bench.add(
            f"the look's grid and the masked one side by side, {w:g} the latter",
            *(
                np.hstack([a * math.sqrt(1 - w), b * math.sqrt(w)])
                for a, b in zip(look, grids, strict=True)
            ),
        )
    grey = source_greys(args.truth, size)

    def masked_truth(ids: list[str], paths: list[Path]) -> np.ndarray:
        # the look's own garment mask, filled with the source garment's stretched shading
        mask = embed_image_paths(lambda im: decompose(rgb(im))[0].ge(1).float().flatten(1),
                                 paths, image_size=size)  # fmt: skip
        shade = FLOOR_LEVEL + (1 - FLOOR_LEVEL) * grey(ids).reshape(len(ids), -1)
        cells = torch.from_numpy(mask * shade).float().view(len(ids), 1, size, size)
        return F.interpolate(cells, size=(GRID, GRID), mode="area").flatten(1).numpy()

    bench.add(
        "the look's mask x the source's stretched shading (ceiling)",
        *centred_pair(masked_truth(bench.ids, bench.base_paths),
                      masked_truth(bench.qids, bench.query_paths)),
    )  # fmt: skip
    bench.add_sources()
    bench.print_table()


if __name__ == "__main__":
    main()
