"""The index's errors, in a module of their own so that the backends can raise them without
importing the index folder code (:mod:`stylesearch.index.store` imports the backends)."""

from __future__ import annotations

from stylesearch.errors import StylesearchError

__all__ = ["IndexFormatError", "IndexMismatchError"]


class IndexFormatError(StylesearchError, ValueError):
    """Not an index folder, or an unreadable / inconsistent one; the message says what to do."""


class IndexMismatchError(IndexFormatError):
    """The index was built with another model (or vocabulary) than the one given."""
