"""Request parameters the OpenC3 way: query string, form fields and a JSON body, merged."""

import io
from typing import Any

import falcon
from falcon.routing import IntConverter

from engine.errors import InvalidInput, TooLarge

MAX_BODY = 4 * 1024 * 1024
CHUNK = 64 * 1024
# Ids are signed 64-bit columns in SQLite and PostgreSQL.
ID_MAX = 2**63 - 1


class BoundedInt(IntConverter):
    """The ``int`` path converter, bounded to what the database holds: a larger id matches
    no route (a 404) instead of reaching a query that cannot bind it."""

    def __init__(
        self, num_digits: int | None = None, min: int = -ID_MAX - 1, max: int = ID_MAX
    ) -> None:
        super().__init__(num_digits, min, max)


def params(req: falcon.Request) -> dict[str, Any]:
    """Return one dict of the query string and the body fields (parsed once per request)."""
    cached = getattr(req.context, "params", None)
    if cached is not None:
        return cached
    merged: dict[str, Any] = {}
    for key, value in req.params.items():
        merged[key] = value
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if (
        req.content_length is None
        and "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    ):
        _read_chunked(req, media_type)
    if req.content_length:
        # A multipart body is a file upload: its route streams it under its own limit.
        if req.content_length > MAX_BODY and not media_type.startswith("multipart/"):
            raise TooLarge(f"body: larger than {MAX_BODY} bytes")
        if media_type in ("application/json", "application/x-www-form-urlencoded", ""):
            if media_type == "":
                raise InvalidInput("body: send Content-Type application/json or a form")
            try:
                body = req.get_media()
            except RecursionError:
                raise InvalidInput("body: JSON nested too deeply") from None
            if not isinstance(body, dict):
                raise InvalidInput("body: must be a JSON object")
            merged.update(body)
        elif not media_type.startswith("multipart/"):
            raise InvalidInput(f"body: unsupported content type {media_type}")
    req.context.params = merged
    return merged


def _read_chunked(req: falcon.Request, media_type: str) -> None:
    """Read a body sent without a length (``Transfer-Encoding: chunked``) to its end, so it
    is parsed like any other; the server has already undone the chunking."""
    if media_type.startswith("multipart/"):
        # An upload is streamed to disk under a limit checked against its length up front.
        raise falcon.HTTPLengthRequired(
            title="Length Required",
            description="file: send an upload with a Content-Length header, not chunked",
        )
    data, size = [], 0
    while True:
        chunk = req.stream.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge(f"body: larger than {MAX_BODY} bytes")
        data.append(chunk)
    req.stream = req.env["wsgi.input"] = io.BytesIO(b"".join(data))
    req.env["CONTENT_LENGTH"] = str(size)


class ParseParameters:
    """Parse every request's parameters up front, so a malformed body is always a 400."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        params(req)
