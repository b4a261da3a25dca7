"""Reading a search request: error answers, bounded JSON and multipart bodies, uploads, and
the :class:`~stylesearch.search.Query` they become (used by :mod:`stylesearch.server.app`).

Every bad input raises :class:`ApiError` with a 4xx status; no body is read past its limit.
"""

import json
import re
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.formparsers import MultiPartParser
from starlette.requests import ClientDisconnect

from stylesearch.catalog.images import ImageError, ImageTooLargeError, NotAnImageError
from stylesearch.search.query import DEFAULT_METHOD, METHODS, Query, QuerySyntaxError, parse_query
from stylesearch.server.guards import BodyTimeout
from stylesearch.server.schemas import MAX_WORD_CHARS, SearchRequest, error_body

__all__ = [
    "IMAGE_ERRORS",
    "MAX_FORM_BYTES",
    "ApiError",
    "bad_request",
    "error_response",
    "image_error",
    "multipart_schema",
    "query_from",
    "read_search",
]

#: the largest JSON search body; multipart bodies may be max_upload_bytes larger
MAX_FORM_BYTES = 64 * 1024
#: Form fields that hold an integer, and the digits that a form may send for one.
INT_FIELDS = ("k",)
_DIGITS = re.compile(r"[0-9]{1,6}")
LIST_FIELDS = ("add", "remove", "must", "must_not")
#: form fields that hold a list of item ids
ID_LIST_FIELDS = ("like", "unlike")
SCALAR_FIELDS = ("item_id", "query", "method", "k")


class ApiError(Exception):
    """An error answer: HTTP status, a stable code, a message and optional extra fields."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra

    def response(self) -> JSONResponse:
        """The answer: :class:`~stylesearch.server.schemas.ErrorBody`'s JSON, validated."""
        return JSONResponse(error_body(self.code, self.detail, **self.extra), self.status)


def error_response(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return ApiError(status, code, detail, **extra).response()


def _field_errors(exc: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        out.append({"field": ".".join(loc), "message": str(err.get("msg", "invalid"))})
    return out


def bad_request(exc: ValidationError | RequestValidationError) -> ApiError:
    errors = _field_errors(exc)
    what = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors[:5])
    return ApiError(400, "bad_request", f"invalid request: {what}", errors=errors)


# --------------------------------------------------------------------------- body reading


async def _limited_stream(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
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


def query_from(req: SearchRequest, image: Any, max_k: int) -> Query:
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
        synonyms=req.synonyms,
    )


async def read_search(request: Request, max_upload: int) -> tuple[SearchRequest, bytes | None]:
    """The search request of a JSON or multipart body, and the uploaded image's bytes."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    image_bytes: bytes | None = None
    if ctype == "application/json":
        data = await _read_json(request)
    elif ctype == "multipart/form-data":
        data, image_bytes = await _read_multipart(request, max_upload)
    else:
        raise ApiError(
            415, "unsupported_media_type", "send application/json or multipart/form-data"
        )
    try:
        return SearchRequest.model_validate(data), image_bytes
    except ValidationError as exc:
        raise bad_request(exc) from None


#: The answer to each kind of unusable image, most specific first: (kind, status, code).
IMAGE_ERRORS: tuple[tuple[type[ImageError], int, str], ...] = (
    (ImageTooLargeError, 413, "image_too_large"),
    (NotAnImageError, 400, "not_an_image"),
    (ImageError, 400, "bad_image"),
)


def image_error(exc: ImageError) -> ApiError:
    """The answer to an image that cannot be used, by its type (its message is the detail)."""
    status, code = next((s, c) for kind, s, c in IMAGE_ERRORS if isinstance(exc, kind))
    return ApiError(status, code, str(exc))


def multipart_schema() -> dict[str, Any]:
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
