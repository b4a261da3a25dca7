"""The FastAPI app: the JSON API under ``/api`` and the web page at ``/`` (docs/server.md).

Status codes: 200; 400 a request that cannot be answered as given (malformed body, missing query,
bad method, ``k`` out of range, unknown word with the closest words, not an image, a truncated
image, a Host this server does not answer); 403 a browser's POST from another site; 404 unknown
item or route; 405; 408 a body that did not arrive in time; 413 an upload over the byte limit
(checked from Content-Length and while reading) or an image over the pixel limit (checked from
its header, before decoding); 415 a search body that is neither JSON nor multipart. A 500 means
a bug: it is logged with its traceback and answered with a generic message. Hosts, origins and
the body deadline are checked by the middlewares of :mod:`stylesearch.server.guards`.
"""

import json
import logging
import mimetypes
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi import Query as QueryParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartParser
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles

from stylesearch.catalog.images import ImageError, load_image
from stylesearch.search.query import (
    DEFAULT_METHOD,
    METHODS,
    Query,
    QuerySyntaxError,
    SearchError,
    parse_query,
)
from stylesearch.search.searcher import UnknownWordError
from stylesearch.server.guards import BodyDeadline, BodyTimeout, HostGuard
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
#: the largest JSON search body; multipart bodies may be max_upload_bytes larger
MAX_FORM_BYTES = 64 * 1024
#: Form fields that hold an integer, and the digits that a form may send for one.
INT_FIELDS = ("k",)
_DIGITS = re.compile(r"[0-9]{1,6}")
LIST_FIELDS = ("add", "remove", "must", "must_not")
#: form fields that hold a list of item ids
ID_LIST_FIELDS = ("like", "unlike")
SCALAR_FIELDS = ("item_id", "query", "method", "k")
#: the page loads nothing from elsewhere
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a request that cannot be answered as given"},
}


class ApiError(Exception):
    """An error answer: HTTP status, a stable code, a message and optional extra fields."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra

    def response(self) -> JSONResponse:
        body = {"error": self.code, "detail": self.detail, **self.extra}
        return JSONResponse(body, status_code=self.status)


def _error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return ApiError(status, code, detail, **extra).response()


def _field_errors(exc: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        out.append({"field": ".".join(loc), "message": str(err.get("msg", "invalid"))})
    return out


def _bad_request(exc: ValidationError | RequestValidationError) -> ApiError:
    errors = _field_errors(exc)
    what = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors[:5])
    return ApiError(400, "bad_request", f"invalid request: {what}", errors=errors)


# --------------------------------------------------------------------------- body reading


async def _limited_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk; :class:`ApiError` 413 as soon as it exceeds ``limit``."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise ApiError(413, "too_large", f"request body over the limit of {limit} bytes")
        yield chunk


def _check_length(request: Request, limit: int) -> None:
    raw = request.headers.get("content-length")
    if raw is None:
        return
    try:
        length = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", "invalid Content-Length header") from None
    if length > limit:
        raise ApiError(
            413, "too_large", f"request body of {length} bytes over the limit of {limit}"
        )


async def _read_json(request: Request) -> dict[str, Any]:
    _check_length(request, MAX_FORM_BYTES)
    body = b"".join([chunk async for chunk in _limited_stream(request, MAX_FORM_BYTES)])
    try:
        data = json.loads(body)
    except RecursionError:
        raise ApiError(400, "bad_request", "the body is not valid JSON: nested too deep") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int over Python's limit
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return data


async def _read_multipart(request: Request, max_upload: int) -> tuple[dict[str, Any], bytes | None]:
    """The form fields (lists for the word fields) and the uploaded image bytes, if any."""
    limit = max_upload + MAX_FORM_BYTES
    _check_length(request, limit)
    parser = MultiPartParser(
        request.headers,
        _limited_stream(request, limit),
        max_files=1,
        max_fields=6 * 32 + 8,
        max_part_size=MAX_FORM_BYTES,
    )
    try:
        form = await parser.parse()
    except (ApiError, BodyTimeout, ClientDisconnect):
        raise
    except Exception as exc:  # MultiPartException, a malformed boundary, bad encodings ...
        raise ApiError(400, "bad_request", f"invalid multipart body: {exc}") from None
    try:
        data: dict[str, Any] = {}
        image: bytes | None = None
        for key in form:
            values = form.getlist(key)
            if key == "image":
                upload = values[0]
                if isinstance(upload, str) or len(values) != 1:
                    raise ApiError(400, "bad_request", "'image' must be one uploaded file")
                image = await upload.read(max_upload + 1)
                if len(image) > max_upload:
                    raise ApiError(
                        413, "too_large", f"image upload over the limit of {max_upload} bytes"
                    )
            elif key in LIST_FIELDS or key in ID_LIST_FIELDS:
                data[key] = [v if isinstance(v, str) else None for v in values]
            elif len(values) != 1:
                raise ApiError(400, "bad_request", f"field {key!r} given {len(values)} times")
            elif key in INT_FIELDS and isinstance(values[0], str) and _DIGITS.fullmatch(values[0]):
                data[key] = int(values[0])  # a form has only strings; JSON's k must be an int
            else:
                data[key] = values[0] if isinstance(values[0], str) else None
    finally:
        await form.close()
    return data, image


def _is_word(word: str) -> bool:
    """One word of the query syntax (no sign, no spaces), at most MAX_WORD_CHARS long."""
    if not word or len(word) > MAX_WORD_CHARS or word[0] in "+-" or len(word.split()) != 1:
        return False
    try:
        return len(parse_query(word).add) == 1
    except QuerySyntaxError:
        return False


def _query_from(req: SearchRequest, image: Any, max_k: int) -> Query:
    if req.k > max_k:
        raise ApiError(400, "bad_request", f"k must be between 1 and {max_k}, got {req.k}")
    for field in LIST_FIELDS:
        for word in getattr(req, field):
            if not _is_word(word):
                raise ApiError(
                    400,
                    "bad_request",
                    f"{field}: {word[:MAX_WORD_CHARS]!r} is not a word (letters and digits, with"
                    f" - or ' inside, at most {MAX_WORD_CHARS} characters)",
                )
    return Query(
        image=image,
        item_id=req.item_id,
        add=req.add,
        remove=req.remove,
        method=req.method,
        k=req.k,
        must=req.must,
        must_not=req.must_not,
        text=req.query or None,
        word_weight=req.word_weight,
        cosine_power=req.cosine_power,
        look_weight=req.look_weight,
        like=req.like,
        unlike=req.unlike,
        like_weight=req.like_weight,
        unlike_weight=req.unlike_weight,
    )


# --------------------------------------------------------------------------- the app


def create_app(service: SearchService) -> FastAPI:
    """The app around a loaded :class:`SearchService` (one per process)."""
    limits = service.limits
    image_size = service.searcher.model.config.image_size
    decoding = threading.BoundedSemaphore(limits.max_decoding)  # memory of uploads at once
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

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _bad_request(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        resp = _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
        for key, value in (exc.headers or {}).items():
            resp.headers[key] = value
        return resp

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        log.info("client left during %s %s", request.method, request.url.path)
        return _error(400, "client_disconnected", "the client closed the connection")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "internal server error (a bug; see the server log)")

    # ------------------------------------------------------------------ search

    search_body = {
        "required": True,
        "content": {
            "application/json": {"schema": SearchRequest.model_json_schema()},
            "multipart/form-data": {"schema": _multipart_schema()},
        },
    }

    @app.post(
        "/api/search",
        response_model=SearchResponseBody,
        responses={
            **ERRORS,
            404: {"model": ErrorBody, "description": "unknown item_id"},
            413: {"model": ErrorBody, "description": "upload over the byte or pixel limit"},
            415: {"model": ErrorBody, "description": "neither JSON nor multipart"},
        },
        openapi_extra={"requestBody": search_body},
        tags=["search"],
    )
    async def search(request: Request) -> Response:
        """Search with a query image (a multipart upload in the field `image`) or a catalog
        `item_id`, wanted / unwanted words (`add` / `remove` lists and / or the one-line `query`
        "+red -striped"), a method (default `combined`), `k` and hard filters (`must`,
        `must_not`). Results are those of `stylesearch search --json`, each with its image URL
        and most probable attributes; `facets` counts the attributes predicted among them.
        Wanted or unwanted words that are not visual are left out of the ranking (except by
        `filter-hard`) and listed in `ignored_words`."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        image_bytes: bytes | None = None
        if ctype == "application/json":
            data = await _read_json(request)
        elif ctype == "multipart/form-data":
            data, image_bytes = await _read_multipart(request, limits.max_upload_bytes)
        else:
            raise ApiError(
                415, "unsupported_media_type", "send application/json or multipart/form-data"
            )
        try:
            req = SearchRequest.model_validate(data)
        except ValidationError as exc:
            raise _bad_request(exc) from None
        image = None
        if image_bytes is not None:
            image = await run_in_threadpool(
                _decode_upload, image_bytes, limits, image_size, decoding
            )
        query = _query_from(req, image, limits.max_k)
        try:
            out = await run_in_threadpool(service.search, query)
        except UnknownItemError as exc:
            raise ApiError(404, "unknown_item", str(exc)) from None
        except UnknownWordError as exc:
            raise ApiError(
                400, "unknown_word", str(exc), word=exc.word, closest=list(exc.closest)
            ) from None
        except SearchError as exc:
            raise ApiError(400, "bad_query", str(exc)) from None
        except ImageError as exc:
            raise _image_error(exc) from None
        if image_bytes is not None:
            out["query"]["image"] = f"<upload, {len(image_bytes)} bytes>"
        return JSONResponse(out)

    # ------------------------------------------------------------------ items

    ItemId = Annotated[
        str, PathParam(min_length=1, max_length=MAX_ID_CHARS, description="an item id")
    ]

    @app.get(
        "/api/items/{item_id}",
        response_model=ItemDetail,
        responses={**ERRORS, 404: {"model": ErrorBody, "description": "unknown item"}},
        tags=["items"],
    )
    def item(item_id: ItemId) -> Response:
        """One catalog item: id, title, image URL, most probable attributes, metadata words."""
        try:
            return JSONResponse(service.item(item_id))
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
    ) -> Response:
        """`n` distinct catalog items drawn at random (for picking a query)."""
        return JSONResponse({"items": service.random_items(n, seed)})

    @app.get("/api/vocabulary", response_model=VocabularyResponse, responses=ERRORS, tags=["words"])
    def vocabulary(
        prefix: Annotated[str, QueryParam(max_length=MAX_WORD_CHARS, description="typed")] = "",
        limit: Annotated[int, QueryParam(ge=1, le=limits.max_vocabulary)] = 10,
        visual_only: Annotated[
            bool, QueryParam(description="only the visual words (false: every word)")
        ] = True,
    ) -> Response:
        """Vocabulary words for autocomplete: those starting with `prefix`, then those containing
        it, most frequent first; only the visual words (those an image can show) unless
        `visual_only=false`."""
        words, total = service.vocabulary(prefix, limit, visual_only)
        return JSONResponse({"prefix": prefix.strip().lower(), "total": total, "words": words})

    @app.get("/api/health", response_model=HealthResponse, tags=["service"])
    def health() -> Response:
        """Liveness and what is loaded."""
        return JSONResponse(service.health())

    # ------------------------------------------------------------------ the page

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html",
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

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

    app.openapi = openapi  # type: ignore[method-assign]
    return app


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
        raise _image_error(exc) from None


def _image_error(exc: ImageError) -> ApiError:
    message = str(exc)
    if message.startswith("image too large"):
        return ApiError(413, "image_too_large", message)
    if message.startswith("not an image"):
        return ApiError(400, "not_an_image", message)
    return ApiError(400, "bad_image", message)


def _multipart_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        "image": {"type": "string", "format": "binary", "description": "the query image file"},
        "item_id": {"type": "string", "description": "or: use this item as the query image"},
        "query": {"type": "string", "description": 'words in the syntax "+red -striped"'},
        "method": {
            "type": "string",
            "enum": list(METHODS),
            "default": DEFAULT_METHOD,
        },
        "k": {"type": "integer", "minimum": 1, "default": 10},
    }
    for name in (*LIST_FIELDS, *ID_LIST_FIELDS):
        props[name] = {"type": "array", "items": {"type": "string"}}
    return {"type": "object", "properties": props}
