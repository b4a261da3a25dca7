"""stylesearch.server: the HTTP API (FastAPI) and the web page of ``stylesearch serve``.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart). See docs/server.md.
"""

from stylesearch.server.app import create_app
from stylesearch.server.service import SearchService, ServerLimits

__all__ = ["SearchService", "ServerLimits", "create_app"]
