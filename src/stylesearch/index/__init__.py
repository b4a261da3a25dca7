"""stylesearch.index: the on-disk index and the vector backends (exact oracle, faiss HNSW, Milvus).

``index`` depends on ``model`` and ``catalog`` (to build) but never on ``search``.
"""

from stylesearch.index.backends import (
    BACKENDS,
    ExactBackend,
    FaissHNSWBackend,
    HNSWParams,
    VectorBackend,
    exact_search,
    resolve_backend,
)
from stylesearch.index.errors import IndexFormatError, IndexMismatchError
from stylesearch.index.postings import csr_from_bags, invert_csr
from stylesearch.index.store import Index, IndexWriter, read_manifest

__all__ = [
    "BACKENDS",
    "ExactBackend",
    "FaissHNSWBackend",
    "HNSWParams",
    "Index",
    "IndexFormatError",
    "IndexMismatchError",
    "IndexWriter",
    "VectorBackend",
    "csr_from_bags",
    "exact_search",
    "invert_csr",
    "read_manifest",
    "resolve_backend",
]
