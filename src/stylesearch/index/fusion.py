"""How an item's own text enters its attribute probabilities ``p_w``: the index's text fusion.

The attribute head reads ``h_w``, the probability that the item has word ``w``, from the image.
The item's title and description say it too, with some noise. An index stores ``p_w``, the two
fused by one of two rules, each with a weight (``stylesearch index --metadata-fusion RULE
--metadata-weight W``, recorded in the manifest as ``metadata_fusion`` and ``metadata_weight``):

- ``"log-odds"`` (the default, weight ``l`` >= 0, default 3): the head's ``h_w`` is the prior
  and the text is evidence whose likelihood ratio is ``e^l``:
  ``logit p_w = logit h_w + l (2 [w in the item's text] - 1)``. Text that names ``w``
  multiplies the odds by ``e^l``; text silent about ``w`` divides them by ``e^l``. An item
  whose text says "sandals" but whose image is plainly a pullover (``h = 0.01``) gets ``p =
  0.17`` at ``l = 3``, where the blend below gives it 0.5. ``l = 0`` is the head alone, the
  paper's ``p``. An unwanted word's factor is the paper's ``1 - p_w``.
- ``"blend"`` (weight ``b`` in [0, 1]): ``p_w = (1 - b) h_w + b [w in the item's text]``. An
  unwanted word's factor is ``max(0, 1 - p_w / (1 - b))``: the head's ``1 - h_w`` for an item
  whose text lacks ``w``, and 0 (for ``b >= 0.5``) for one whose text names it. Index folders
  written before the rules existed record a weight alone and are blends.

:meth:`TextFusion.head` takes the text back out of stored probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from stylesearch.config import DEFAULT_FUSION_WEIGHTS, FUSION_RULES, ConfigError

__all__ = ["TextFusion"]

#: ``h`` is kept within [EPS, 1 - EPS] before its logit (the head's float16 can round to 0 or 1)
EPS = 1e-4
#: columns, and rows, fused at a time (columns are cheap on the attributes' Fortran order; the
#: rows bound the float32 temporaries at about 30 MB each, whatever the catalog's size)
_BLOCK = 64
_ROWS = 1 << 17


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float32), np.float32(EPS), np.float32(1.0 - EPS))
    return np.log(p / (np.float32(1.0) - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    half = np.float32(0.5)
    return half * (np.float32(1.0) + np.tanh(half * z))  # no overflow for large |z|


def _check_rule(rule: str) -> str:
    if rule not in FUSION_RULES:
        raise ConfigError(f"unknown metadata fusion {rule!r}; choose one of {FUSION_RULES}")
    return rule


def _tiles(rows: int, columns: int) -> list[tuple[slice, slice]]:
    return [
        (slice(r, min(rows, r + _ROWS)), slice(c, min(columns, c + _BLOCK)))
        for c in range(0, columns, _BLOCK)
        for r in range(0, rows, _ROWS)
    ]


@dataclass(frozen=True)
class TextFusion:
    """A fusion rule and its weight (the module's docstring). ``TextFusion()`` is the default."""

    rule: str = FUSION_RULES[0]
    weight: float = DEFAULT_FUSION_WEIGHTS[FUSION_RULES[0]]

    def __post_init__(self) -> None:
        _check_rule(self.rule)
        w = self.weight
        if self.rule == "blend" and not 0.0 <= w <= 1.0:
            raise ConfigError(f"the metadata weight of a blend must be in [0, 1], got {w}")
        if self.rule == "log-odds" and not (math.isfinite(w) and w >= 0.0):
            raise ConfigError(f"the metadata weight of log-odds fusion must be >= 0, got {w}")

    @classmethod
    def of(cls, rule: str | None = None, weight: float | None = None) -> TextFusion:
        """``rule`` (default ``"log-odds"``) at ``weight`` (default: the rule's own)."""
        rule = FUSION_RULES[0] if rule is None else _check_rule(rule)
        return cls(rule, DEFAULT_FUSION_WEIGHTS[rule] if weight is None else float(weight))

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> TextFusion:
        """The fusion an index folder's manifest records (none: a blend of weight 0, the
        attribute head alone)."""
        return cls(
            str(manifest.get("metadata_fusion", "blend")),
            float(manifest.get("metadata_weight", 0.0)),
        )

    def manifest_entries(self) -> dict[str, Any]:
        """What an index's manifest records of this fusion."""
        return {"metadata_fusion": self.rule, "metadata_weight": self.weight}

    def describe(self) -> str:
        """``log-odds 3`` / ``blend 0.5``."""
        return f"{self.rule} {self.weight:g}"

    @property
    def removal_scale(self) -> float:
        """``r`` of an unwanted word's factor ``max(0, 1 - r p_w)``: 1 for log-odds fusion,
        ``1 / (1 - b)`` for a blend (1 for ``b = 1``, whose ``p`` is exactly 0 or 1)."""
        if self.rule == "log-odds" or self.weight == 1.0:
            return 1.0
        return 1.0 / (1.0 - self.weight)

    def fuse(self, attributes: np.ndarray, offsets: np.ndarray, words: np.ndarray) -> None:
        """Fuse each item's text into ``attributes`` ``(n, V)`` float16 (an array or a memmap),
        in place. ``offsets`` / ``words``: the items' metadata words as CSR
        (:func:`~stylesearch.index.build.metadata_csr`)."""
        if self.rule == "blend" and self.weight == 0.0:
            return  # the head alone
        rows = np.repeat(np.arange(attributes.shape[0]), np.diff(np.asarray(offsets)))
        cols = np.asarray(words, dtype=np.int64)
        named = np.asarray(attributes[rows, cols], np.float32) if len(rows) else None
        if self.rule == "blend":
            silent = lambda h: h * np.float32(1.0 - self.weight)  # noqa: E731
            said = lambda h: np.minimum(silent(h) + np.float32(self.weight), 1.0)  # noqa: E731
        else:
            weight = np.float32(self.weight)
            silent = lambda h: _sigmoid(_logit(h) - weight)  # noqa: E731
            said = lambda h: _sigmoid(_logit(h) + weight)  # noqa: E731
        for tile in _tiles(*attributes.shape):
            h = np.asarray(attributes[tile], np.float32)
            attributes[tile] = silent(h).astype(np.float16)
        if named is not None:
            attributes[rows, cols] = said(named).astype(np.float16)

    def head(self, attributes: np.ndarray, offsets: np.ndarray, words: np.ndarray) -> np.ndarray:
        """The attribute head's own ``h`` from probabilities fused by :meth:`fuse`, as a new
        float32 array (``attributes`` is left as it is). A blend of weight 1 keeps nothing of
        the head; log-odds fusion keeps it to a few thousandths, except where float16 has
        rounded ``p`` to 0 or 1 (``h`` below about ``EPS e^l`` or above ``1 - EPS e^l``)."""
        p = np.array(attributes, dtype=np.float32)
        rows = np.repeat(np.arange(p.shape[0]), np.diff(np.asarray(offsets)))
        cols = np.asarray(words, dtype=np.int64)
        if self.rule == "blend":
            if self.weight >= 1.0:
                raise ConfigError("the head's p cannot be recovered from a blend of weight 1")
            p[rows, cols] -= np.float32(self.weight)
            return np.clip(p / np.float32(1.0 - self.weight), 0.0, 1.0)
        weight = np.float32(self.weight)
        named = p[rows, cols]
        for tile in _tiles(*p.shape):
            p[tile] = _sigmoid(_logit(p[tile]) + weight)
        p[rows, cols] = _sigmoid(_logit(named) - weight)
        return p
