"""The base class of the errors a user can fix."""

from __future__ import annotations

__all__ = ["StylesearchError"]


class StylesearchError(Exception):
    """An error whose message is the whole story for a user: what is wrong and what to do.

    Every user-facing error of the library derives from it, and also from the built-in type it
    is (``ValueError``, ``RuntimeError``, ``FileNotFoundError``...) for callers that catch that.
    The command line prints the message as one line and exits with status 1; any other
    exception is a bug and keeps its traceback.
    """
