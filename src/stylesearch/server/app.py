"""The FastAPI app: the JSON API under ``/api`` and the web page at ``/`` (docs/server.md).

Status codes: 200; 400 a request that cannot be answered as given (malformed body, missing query,
bad method, ``k`` out of range, unknown word with the closest words, not an image, a truncated
image, a Host this server does not answer); 403 a browser's POST from another site; 404 unknown
item or route; 405; 408 a body that did not arrive in time; 413 an upload over the byte limit
(checked from Content-Length and while reading) or an image over the pixel limit (checked from
its header, before decoding); 415 a search body that is neither JSON nor multipart. A 500 means
a bug: it is logged with its traceback and answered with a generic message. Hosts, origins and
the body deadline are checked by the middlewares of :mod:`stylesearch.server.guards`.

Each JSON route returns its body as a dict and FastAPI validates it by the route's
``response_model`` (:mod:`stylesearch.server.schemas`) before sending it: a body that does not
match its model is a bug, a logged 500.
"""

import logging
import mimetypes
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi import Query as QueryParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles

from stylesearch.catalog.images import ImageError, load_image
from stylesearch.search.query import Query, SearchError
from stylesearch.search.words import UnknownWordError
from stylesearch.server.guards import BodyDeadline, HostGuard
from stylesearch.server.requests import (
    ApiError,
    bad_request,
    error_response,
    image_error,
    multipart_schema,
    query_from,
    read_search,
)
from stylesearch.server.schemas import (
    MAX_ID_CHARS,
    MAX_WORD_CHARS,
    ErrorBody,
    HealthResponse,
    ItemDetail,
    ItemsResponse,
    SearchRequest,
    SearchResponseBody,
    VocabularyResponse,
)
from stylesearch.server.service import SearchService, ServerLimits, UnknownItemError

__all__ = ["STATIC_DIR", "create_app"]

log = logging.getLogger("stylesearch.server")

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: the page loads nothing from elsewhere
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a request that cannot be answered as given"},
}


# --------------------------------------------------------------------------- the app


def create_app(service: SearchService) -> FastAPI:
    """The app around a loaded :class:`SearchService` (one per process)."""
    limits = service.limits
    # FastAPIOffline serves the /docs and /redoc assets from the installed package: no CDN
    app = FastAPIOffline(
        title="stylesearch",
        version=service.health()["version"],
        summary="Multimodal style search: an image plus wanted and unwanted words.",
        description="The JSON API of `stylesearch serve` (docs/server.md). Errors are "
        '`{"error": code, "detail": message}` with a 4xx status.',
    )
    app.state.service = service
    # each add wraps the app so far: HostGuard runs first, so a foreign Host or a cross-site
    # POST is answered before any of its body is read
    app.add_middleware(BodyDeadline, timeout=limits.body_timeout)
    app.add_middleware(HostGuard, allowed_hosts=limits.allowed_hosts)
    _add_error_handlers(app)
    _add_search_route(app, service)
    _add_item_routes(app, service)
    _add_page(app)
    app.openapi = _openapi_builder(app)  # type: ignore[method-assign]
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answers ``{"error", "detail"}``; a 500 is a logged bug."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return bad_request(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        resp = error_response(
            exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail)
        )
        for key, value in (exc.headers or {}).items():
            resp.headers[key] = value
        return resp

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        log.info("client left during %s %s", request.method, request.url.path)
        return error_response(400, "client_disconnected", "the client closed the connection")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", "internal server error (a bug; see the server log)"
        )


def _run_search(service: SearchService, query: Query) -> dict[str, Any]:
    """:meth:`SearchService.search`, its errors as :class:`ApiError` (run in a thread)."""
    try:
        return service.search(query)
    except UnknownItemError as exc:
        raise ApiError(404, "unknown_item", str(exc)) from None
    except UnknownWordError as exc:
        raise ApiError(
            400, "unknown_word", str(exc), word=exc.word, closest=list(exc.closest)
        ) from None
    except SearchError as exc:
        raise ApiError(400, "bad_query", str(exc)) from None
    except ImageError as exc:
        raise image_error(exc) from None


def _add_search_route(app: FastAPI, service: SearchService) -> None:
    limits = service.limits
    image_size = service.searcher.model.config.image_size
    decoding = threading.BoundedSemaphore(limits.max_decoding)  # memory of uploads at once
    search_body = {
        "required": True,
        "content": {
            "application/json": {"schema": SearchRequest.model_json_schema()},
            "multipart/form-data": {"schema": multipart_schema()},
        },
    }

    @app.post(
        "/api/search",
        response_model=SearchResponseBody,
        # the settings of the understood query are absent where the method does not use them
        response_model_exclude_unset=True,
        responses={
            **ERRORS,
            404: {"model": ErrorBody, "description": "unknown item_id (or like / unlike id)"},
            413: {"model": ErrorBody, "description": "upload over the byte or pixel limit"},
            415: {"model": ErrorBody, "description": "neither JSON nor multipart"},
        },
        openapi_extra={"requestBody": search_body},
        tags=["search"],
    )
    async def search(request: Request) -> dict[str, Any]:
        """Search with a query image (a multipart upload in the field `image`) or a catalog
        `item_id`, wanted / unwanted words (`add` / `remove` lists and / or the one-line `query`
        "+red -striped"), a method (default `combined`), `k` and hard filters (`must`,
        `must_not`). `like` / `unlike` item ids move the query towards / away from those
        items (rejected items are left out). Results are those of `stylesearch search --json`,
        each with its image URL and most probable visual attributes; `facets` counts the
        attributes predicted among them. Wanted or unwanted words that are not visual are left
        out of the ranking (except by `filter-hard`) and listed in `ignored_words`."""
        req, image_bytes = await read_search(request, limits.max_upload_bytes)
        image = None
        if image_bytes is not None:
            image = await run_in_threadpool(
                _decode_upload, image_bytes, limits, image_size, decoding
            )
        query = query_from(req, image, limits.max_k)
        out = await run_in_threadpool(_run_search, service, query)
        if image_bytes is not None:
            out["query"]["image"] = f"<upload, {len(image_bytes)} bytes>"
        return out


ItemId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_CHARS, description="an item id")]


def _add_item_routes(app: FastAPI, service: SearchService) -> None:
    """Items, their images, random items, the vocabulary and health: read-only, no lock."""
    limits = service.limits

    @app.get(
        "/api/items/{item_id}",
        response_model=ItemDetail,
        responses={**ERRORS, 404: {"model": ErrorBody, "description": "unknown item"}},
        tags=["items"],
    )
    def item(item_id: ItemId) -> dict[str, Any]:
        """One catalog item: id, title, image URL, most probable attributes, metadata words."""
        try:
            return service.item(item_id)
        except UnknownItemError as exc:
            raise ApiError(404, "unknown_item", str(exc)) from None

    @app.get(
        "/api/items/{item_id}/image",
        response_class=FileResponse,
        responses={
            **ERRORS,
            200: {"content": {"image/*": {}}, "description": "the item's image file"},
            404: {"model": ErrorBody, "description": "unknown item, or its file is gone"},
        },
        tags=["items"],
    )
    def item_image(item_id: ItemId) -> Response:
        """The item's image, found by id in the index (clients never name a path)."""
        try:
            path = Path(service.image_path(item_id))
        except UnknownItemError as exc:
            raise ApiError(404, "unknown_item", str(exc)) from None
        if not path.is_file():
            raise ApiError(404, "image_missing", f"the image file of item {item_id!r} is gone")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/random-items", response_model=ItemsResponse, responses=ERRORS, tags=["items"])
    def random_items(
        n: Annotated[int, QueryParam(ge=1, le=limits.max_random, description="how many")] = 12,
        seed: Annotated[
            int | None, QueryParam(ge=0, le=2**63 - 1, description="draw reproducibly")
        ] = None,
    ) -> dict[str, Any]:
        """`n` distinct catalog items drawn at random (for picking a query)."""
        return {"items": service.random_items(n, seed)}

    @app.get("/api/vocabulary", response_model=VocabularyResponse, responses=ERRORS, tags=["words"])
    def vocabulary(
        prefix: Annotated[str, QueryParam(max_length=MAX_WORD_CHARS, description="typed")] = "",
        limit: Annotated[int, QueryParam(ge=1, le=limits.max_vocabulary)] = 10,
        visual_only: Annotated[
            bool, QueryParam(description="only the visual words (false: every word)")
        ] = True,
    ) -> dict[str, Any]:
        """Vocabulary words for autocomplete: those starting with `prefix`, then those containing
        it, most frequent first; only the visual words (those an image can show) unless
        `visual_only=false`."""
        words, total = service.vocabulary(prefix, limit, visual_only)
        return {"prefix": prefix.strip().lower(), "total": total, "words": words}

    @app.get("/api/health", response_model=HealthResponse, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness and what is loaded."""
        return service.health()


def _add_page(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _openapi_builder(app: FastAPI) -> Any:
    """The app's OpenAPI schema, built once, without FastAPI's 422 (validation errors are 400)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            for ops in schema.get("paths", {}).values():
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)  # validation errors are 400 here
            schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
            schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def _decode_upload(
    data: bytes, limits: ServerLimits, image_size: int, decoding: threading.BoundedSemaphore
) -> Any:
    try:
        with decoding:
            return load_image(
                data,
                max_pixels=limits.max_pixels,
                shrink_to=image_size,
                max_decode_bytes=limits.max_decode_bytes,
            )
    except ImageError as exc:
        raise image_error(exc) from None
