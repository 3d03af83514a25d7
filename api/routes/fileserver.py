"""/fileserver: a project's file store. Uploads are multipart/form-data, streamed to disk."""

import urllib.parse
from collections.abc import Iterator
from typing import Any

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.errors import InvalidInput
from engine.files import fileserver
from engine.store import listing
from engine.store.validate import Field, check

DOWNLOAD = {"stream": Field(bool, default=False)}


def _malformed(e: falcon.HTTPError) -> InvalidInput:
    return InvalidInput(f"file: malformed multipart body: {e.description or e.title}")


class _PartStream:
    """A part's stream whose parse errors are a 400 naming the file field."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self.stream.read(size)
        except falcon.MediaMalformedError as e:
            raise _malformed(e) from None


def parts(req: falcon.Request) -> Iterator[tuple[str, str | None, _PartStream]]:
    """Yield ``(field, file name, stream)`` for each part of a multipart body, as it arrives."""
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise InvalidInput("file: send the files as multipart/form-data")
    try:
        for part in req.get_media():
            yield part.name, part.filename, _PartStream(part.stream)
    except falcon.MediaMalformedError as e:
        raise _malformed(e) from None


def _attachment(name: str) -> str:
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    quoted = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quoted}"


class Collection:
    """A project's files."""

    @requires("read")
    @takes(listing.COMMON_FILTERS, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List files, newest first: id, name, size, md5, creator, editor, times (filters:
        name, create_user, edit_user, dates; paging)."""
        ok(resp, fileserver.list_files(projectid, params(req)))

    @requires("write")
    @takes(upload={})
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Upload files (multipart/form-data, one or more file parts); a stored name is
        replaced. Answers the number of files."""
        ok(
            resp,
            fileserver.upload(
                projectid, parts(req), req.context.principal.name, req.content_length
            ),
        )


class TokenUpload:
    """Upload with an upload token instead of an API key."""

    @requires("public")
    @takes(header={"token": fileserver.TOKEN}, upload=fileserver.TOKEN_UPLOAD, answers=(403,))
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Upload files with the `token` header (optional checkmd5, user); a job token then
        starts its job with version=<file name>. The token grants nothing else."""
        result = fileserver.token_upload(
            projectid, req.get_header("token"), parts(req), params(req), req.content_length
        )
        ok(resp, result["count"], uuids=result["uuids"])


def _send(resp: falcon.Response, found: Any) -> None:
    resp.content_type = "application/octet-stream"
    resp.set_header("Content-Disposition", _attachment(found.name))
    resp.set_header("ETag", f'"{found.md5}"')
    resp.set_stream(found.stream, found.size)


class Download:
    """One file's bytes, through a download link or streamed at once."""

    @requires("read")
    @takes(fileserver.FILE, DOWNLOAD, produces=("application/json", "application/octet-stream"))
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Answer a single-use download link for file `name`, valid 60 s, that
        `GET /download/{link}` serves without a key (OpenC3's two steps); with `stream=1`,
        stream the file itself."""
        if check(params(req), DOWNLOAD)["stream"]:
            _send(resp, fileserver.open_file(projectid, params(req)))
        else:
            ok(resp, fileserver.link_file(projectid, params(req)))


class DownloadLink:
    """A file behind a download link."""

    @requires("public")
    @takes(produces=("application/octet-stream",))
    def on_get(self, req: falcon.Request, resp: falcon.Response, link: str) -> None:
        """Stream the file of a download link (the link is the credential; it works once)."""
        _send(resp, fileserver.open_link(link))


class Item:
    """One file."""

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, fileid: str
    ) -> None:
        """Remove a file (soft: the row is marked deleted)."""
        ok(resp, fileserver.delete_file(projectid, fileid, req.context.principal.name))


ROUTES = [
    ("/fileserver/{projectid:int}", Collection()),
    ("/fileserver/{projectid:int}/upload", TokenUpload()),
    # OpenC3's web server rewrote uploads under this prefix; its UI and docs still use it.
    ("/uploadv2/fileserver/{projectid:int}", Collection()),
    ("/uploadv2/fileserver/{projectid:int}/upload", TokenUpload()),
    ("/download/{link}", DownloadLink()),
    ("/fileserver/{projectid:int}/download", Download()),
    ("/fileserver/{projectid:int}/{fileid}", Item()),
]
