"""stylesearch: multimodal style search with joint visual-textual embeddings.

Implements "Joint Visual-Textual Embedding for Multimodal Style Search" (Sadeh et al., 2019):
an image tower and a bag-of-words text tower trained with the MBMR loss plus an attribute head,
used to search a catalog with an image and wanted/unwanted words.

    >>> import stylesearch
    >>> model = stylesearch.load_model("runs/demo/model")   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from stylesearch.model.joint import JointModel

__all__ = ["__version__", "load_model"]


def load_model(model_dir: Any, *, device: Any = "cpu") -> JointModel:
    """Load a trained model folder (config.json, vocab.json, model.safetensors), offline.

    The returned :class:`~stylesearch.model.joint.JointModel` is in eval mode and carries its
    ``vocab`` (:class:`~stylesearch.text.vocabulary.Vocabulary`) and ``text_config``.
    """
    from stylesearch.model.io import load_model as _load

    return _load(model_dir, device=device)
