"""stylesearch.catalog: read and validate product catalogs, load their images for PyTorch.

* :mod:`~stylesearch.catalog.images`: safe image opening (missing / corrupt / oversized).
* :mod:`~stylesearch.catalog.manifest`: JSONL / CSV / Parquet manifests -> :class:`Catalog`.
* :mod:`~stylesearch.catalog.transforms`: colour-safe train and eval transforms.
* :mod:`~stylesearch.catalog.dataset`: pair and image datasets, collate functions.
* :mod:`~stylesearch.catalog.synthetic`: a generated shapes catalog for tests and smoke runs.

The dataset and transform modules import torch; import them from their modules
(``from stylesearch.catalog.dataset import PairDataset``) so that this package stays light.
"""

from stylesearch.catalog.images import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    check_image,
    load_image,
)
from stylesearch.catalog.manifest import (
    Catalog,
    CatalogError,
    CatalogItem,
    RejectedRow,
    iter_manifest_rows,
    load_catalog,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Catalog",
    "CatalogError",
    "CatalogItem",
    "ImageError",
    "ImageTooLargeError",
    "NotAnImageError",
    "RejectedRow",
    "check_image",
    "iter_manifest_rows",
    "load_catalog",
    "load_image",
]
