"""Vector backends: top-k by inner product over the catalog's unit vectors.

* :mod:`~stylesearch.index.backends.base`: the :class:`VectorBackend` protocol (the search
  contract and its result padding), :class:`HNSWParams`, the helpers the backends share and the
  registry :data:`BACKENDS` (manifest name -> class) with :func:`resolve_backend`;
* :mod:`~stylesearch.index.backends.exact`: :class:`ExactBackend`, the numpy oracle;
* :mod:`~stylesearch.index.backends.faiss_hnsw`: :class:`FaissHNSWBackend`, the embedded
  default for large catalogs;
* :mod:`~stylesearch.index.backends.milvus`: :class:`MilvusBackend`, a Milvus collection
  (pymilvus is imported only when a Milvus index is built or loaded).

Importing this package registers the three backends, in that order.
"""

from stylesearch.index.backends.base import (
    BACKEND_ALIASES,
    BACKENDS,
    AddedRows,
    HNSWParams,
    VectorBackend,
    resolve_backend,
)
from stylesearch.index.backends.exact import ExactBackend, exact_search
from stylesearch.index.backends.faiss_hnsw import FaissHNSWBackend
from stylesearch.index.backends.milvus import MilvusBackend

__all__ = [
    "AddedRows",
    "BACKENDS",
    "BACKEND_ALIASES",
    "ExactBackend",
    "FaissHNSWBackend",
    "HNSWParams",
    "MilvusBackend",
    "VectorBackend",
    "exact_search",
    "resolve_backend",
]
