"""The look: a colour-blind shape vector of an image, kept beside ``f_I`` in the index.

The joint embedding is trained against the words alone, so colour and pattern dominate it: among
the red items, the nearest to a blue query dress are not the ones shaped like it
(docs/results.md). The look is blind to colour and pattern by construction. It reads the image
(ImageNet normalisation undone) on a ``GRID`` x ``GRID`` grid in one of four ways, its ``kind``:

- ``"pixel-shading"`` (the default): the garment's shaded silhouette against the photo's plain
  background read per pixel (:func:`stylesearch.model.pixel_shading.pixel_shading`) with its
  shading stretched from the catalog's shading floor
  (:func:`~stylesearch.model.silhouette.stretch_shading`), area-resampled to the grid. It needs
  product photos on a plain background;
- ``"shading"``: the same with each pixel's tone taken as the brightest around it
  (:func:`stylesearch.model.silhouette.shaded_silhouette`), which blurs the shading (model
  folders saved before ``"pixel-shading"``);
- ``"silhouette"``: ``"shading"`` without the stretch (model folders saved before
  ``"shading"``);
- ``"luminance"``: the image's luminance, blurred by ``BLUR_CELLS`` grid cells (which washes out
  stripes, dots and checks), area-resampled to the grid and standardised per image (zero mean,
  unit variance), so a dark and a light garment of one shape give the same grid. It assumes
  nothing about the background. Model folders saved before the kinds existed use it.

Each kind has a version (``LOOK_VERSIONS``), raised whenever a change to the code moves the
grid of some image. An index records the version its rows were read with, and a model whose
look reads another version is refused there (:meth:`stylesearch.index.store.Index.check_model`):
the rows and the queries would be read two ways.

The grid is then projected on the top ``dim`` principal components of the training catalog's
grids (centred on their mean) and L2-normalised. Reading the grid is fixed but for the shading
floor; the floor (:meth:`ShapeLook.fit_floor`) and then the projection (:meth:`ShapeLook.fit`)
are fitted on the catalog (``stylesearch train`` does both after the last epoch) and saved with
the model's weights as buffers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylesearch.catalog.transforms import IMAGENET_MEAN, IMAGENET_STD
from stylesearch.config import LOOK_KINDS
from stylesearch.model.pixel_shading import LUMA, gaussian_blur, luminance, pixel_shading
from stylesearch.model.silhouette import shaded_silhouette, shading_floor, stretch_shading

__all__ = ["BLUR_CELLS", "FLOOR_KINDS", "GRID", "LOOK_KINDS", "LOOK_VERSIONS", "LUMA", "ShapeLook"]

#: side of the grid the look is read on
GRID = 32
#: standard deviation of the blur, in grid cells
BLUR_CELLS = 0.9
#: the kinds whose shading is stretched from a fitted floor
FLOOR_KINDS = ("pixel-shading", "shading")
#: the version of each kind's reading: ``"pixel-shading"`` 6 masks light, neutral garments at
#: their own threshold (2), reads the background as the border's most frequent colour (3),
#: which ``"shading"`` and ``"silhouette"`` 2 read too, splits a plain garment's pixels into
#: its colour and the background's (4), reads a print's other tone by the tones' ratio, its
#: gaps left out (5), and calls a garment patterned only where its texture is spread over it (6)
LOOK_VERSIONS = {"pixel-shading": 6, "shading": 2, "silhouette": 2, "luminance": 1}
#: how each kind other than ``"luminance"`` reads the shaded silhouette of RGB on 0..255
_SHADED = {
    "pixel-shading": pixel_shading,
    "shading": shaded_silhouette,
    "silhouette": shaded_silhouette,
}


class ShapeLook(nn.Module):
    """Images ``(B, 3, S, S)`` (ImageNet-normalised) -> unit looks ``(B, dim)``.

    Args:
        image_size: S, the model's input size (it sets the blur in pixels).
        dim: the look's dimension (principal components kept), >= 1.
        kind: how the grid is read, one of ``LOOK_KINDS``.
    """

    def __init__(self, image_size: int, dim: int, kind: str = LOOK_KINDS[0]) -> None:
        super().__init__()
        if kind not in LOOK_KINDS:
            raise ValueError(f"unknown look kind {kind!r}; choose one of {LOOK_KINDS}")
        if dim < 1:
            raise ValueError(f"the look dimension must be >= 1, got {dim}")
        cells = GRID * GRID
        if dim > cells:
            raise ValueError(f"the look dimension must be <= {cells}, got {dim}")
        self.dim = dim
        self.kind = kind
        self.sigma = BLUR_CELLS * image_size / GRID
        self.register_buffer("mean", torch.zeros(cells))
        self.register_buffer("basis", torch.zeros(cells, dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        if kind in FLOOR_KINDS:
            # -1 until fitted (fit_floor); only these kinds have the buffer, so the weights of
            # the other kinds' folders load as they were saved
            self.register_buffer("floor", torch.full((), -1.0))

    @property
    def version(self) -> int:
        """The version of this kind's reading (``LOOK_VERSIONS``)."""
        return LOOK_VERSIONS[self.kind]

    @staticmethod
    def _rgb(images: Tensor) -> Tensor:
        """ImageNet-normalised images -> RGB in [0, 1]."""
        mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
        return images.float() * std + mean

    def tones(self, images: Tensor) -> Tensor:
        """The garment pixels' shading in ``images`` ``(B, 3, S, S)`` (ImageNet-normalised), a
        flat tensor: what :meth:`fit_floor` reads."""
        if self.kind not in FLOOR_KINDS:
            raise ValueError(f"a {self.kind!r} look has no shading floor")
        shaded = _SHADED[self.kind](self._rgb(images) * 255.0)
        return shaded[shaded > 0]

    @torch.no_grad()
    def fit_floor(self, tones: Tensor) -> float:
        """Set a ``FLOOR_KINDS`` look's floor from ``tones`` (:meth:`tones` of a sample of the
        training images) and return it (:func:`shading_floor`)."""
        if self.kind not in FLOOR_KINDS:
            raise ValueError(f"a {self.kind!r} look has no shading floor")
        floor = shading_floor(tones)
        self.floor.fill_(floor)
        return floor

    def grid(self, images: Tensor) -> Tensor:
        """``(B, 3, S, S)`` -> grids ``(B, GRID * GRID)`` float32, read as the look's ``kind``."""
        rgb = self._rgb(images)
        if self.kind in _SHADED:
            cells = _SHADED[self.kind](rgb * 255.0)
            if self.kind in FLOOR_KINDS:
                floor = float(self.floor)
                if floor < 0:
                    raise RuntimeError("the look's shading floor is not fitted (fit_floor)")
                cells = stretch_shading(cells, floor)
            return F.interpolate(cells, size=(GRID, GRID), mode="area").flatten(1)
        grey = gaussian_blur(luminance(rgb), self.sigma, padding="replicate")
        cells = F.interpolate(grey, size=(GRID, GRID), mode="area").flatten(1)
        cells = cells - cells.mean(dim=1, keepdim=True)
        spread = cells.pow(2).mean(dim=1, keepdim=True).sqrt()
        return torch.where(spread > 1e-6, cells / spread.clamp_min(1e-6), torch.zeros_like(cells))

    @torch.no_grad()
    def fit(self, grids: Tensor) -> None:
        """The mean and top principal directions of ``grids`` ``(n, GRID * GRID)``
        (:meth:`grid` of the training images). With fewer than ``dim`` independent grids the
        remaining directions stay zero."""
        if grids.ndim != 2 or grids.shape[1] != self.mean.numel() or len(grids) < 2:
            raise ValueError(
                f"fitting the look needs at least 2 grids of {self.mean.numel()} cells, "
                f"got shape {tuple(grids.shape)}"
            )
        x = grids.double()
        mu = x.mean(dim=0)
        _, _, vt = torch.linalg.svd(x - mu, full_matrices=False)
        basis = torch.zeros_like(self.basis, dtype=torch.float64)
        kept = min(self.dim, vt.shape[0])
        basis[:, :kept] = vt[:kept].T
        self.mean.copy_(mu.float())
        self.basis.copy_(basis.float())
        self.fitted.fill_(True)

    def project(self, grids: Tensor) -> Tensor:
        """Unit looks ``(B, dim)`` of grids ``(B, GRID * GRID)`` (:meth:`grid`); a grid equal to
        the mean gives the zero vector."""
        if not bool(self.fitted):
            raise RuntimeError("the model's look is not fitted (ShapeLook.fit)")
        return F.normalize((grids - self.mean) @ self.basis, dim=-1)

    def forward(self, images: Tensor) -> Tensor:
        """Unit looks ``(B, dim)`` of ``images`` (:meth:`project` of their :meth:`grid`)."""
        return self.project(self.grid(images))
