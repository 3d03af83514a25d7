"""The file-store routes: list, upload (with an API key or an upload token), download, delete.

Uploads arrive as ``(field, file name, stream)`` parts and are streamed to disk, never held
in memory. A request that is refused (a bad name, too large, a wrong md5) stores none of its
files. An upload token grants only the token upload into its project, and may start the
token's job for each file it stores.
"""

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from secrets import token_hex, token_urlsafe
from typing import TYPE_CHECKING, Any

from engine.access import auth, tokens
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, OpsjobError, TooLarge
from engine.files import filestore
from engine.run import tasks
from engine.store.listing import as_dict, common_filters, paged
from engine.store.models import FileServer
from engine.store.records import in_project, soft_delete
from engine.store.validate import Field, check

if TYPE_CHECKING:
    from engine.store.settings import Settings

LIST_FIELDS = (
    "id",
    "name",
    "size",
    "md5",
    "create_user",
    "create_time",
    "edit_user",
    "edit_time",
)
# Room for multipart boundaries and part headers on top of the file bytes.
BODY_OVERHEAD = 256 * 1024
TOKEN = Field(pattern=r"[A-Za-z0-9._-]{8,64}", max_len=64)
TOKEN_UPLOAD = {
    "checkmd5": Field(pattern=r"[0-9a-fA-F]{32}", max_len=32),
    "user": Field(pattern=r"[A-Za-z0-9.@_-]+", max_len=100),
}

FILE = {"name": Field(required=True, max_len=1000, pattern=None)}
LINK = Field(required=True, pattern=r"[A-Za-z0-9_-]{32}", max_len=32)
LINK_SECONDS = 60  # a download link is opened by the browser right after it is made

_settings: dict[str, "Settings | None"] = {"value": None}
# One part of a multipart upload: (form field, file name or None for a plain field, stream).
Part = tuple[str | None, str | None, filestore.Readable]


def register(huey: Any, settings: "Settings") -> None:
    """Remember the settings (the store's directory and the upload limit)."""
    _settings["value"] = settings


def _config() -> "Settings":
    if _settings["value"] is None:
        raise RuntimeError("the file store is not configured (engine.boot.start)")
    return _settings["value"]


@dataclass
class Download:
    """A stored file ready to be sent."""

    name: str
    size: int
    md5: str
    stream: object  # an open binary file; the caller closes it


def list_files(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's files, newest first (filters: name, create_user, edit_user, dates)."""
    query = FileServer.select().where(
        FileServer.projectid == projectid, FileServer.status != "deleted"
    )
    query = common_filters(query, FileServer, params)
    return [as_dict(r, LIST_FIELDS) for r in paged(query.order_by(FileServer.id.desc()), params)]


def _receive_all(
    parts: Iterable[Part], content_length: int | None
) -> list[tuple[str, filestore.Blob]]:
    """Stream every file part to a temporary file; return ``[(name, blob)]``."""
    settings = _config()
    limit = settings.max_upload
    if content_length and content_length > limit + BODY_OVERHEAD:
        raise TooLarge(f"file: the upload is larger than the limit of {limit} bytes")
    received: list[tuple[str, filestore.Blob]] = []
    try:
        for field, filename, stream in parts:
            if filename is None:
                continue  # a plain form field, not a file
            name = filestore.check_name(field or "file", filename)
            left = limit - sum(b.size for _, b in received)
            blob = filestore.receive(
                settings, filestore.read_chunks(stream), field or "file", limit=left
            )
            received.append((name, blob))
    except BaseException:
        for _, blob in received:
            filestore.discard(blob)
        raise
    if not received:
        raise InvalidInput("file: the request carries no file (send multipart/form-data)")
    return received


def _store(projectid, received, create_user, edit_user):
    settings = _config()
    rows = []
    for name, blob in received:
        filestore.keep(settings, blob)
        rows.append(filestore.record(projectid, name, blob, create_user, edit_user))
    return rows


def upload(
    projectid: int, parts: Iterable[Part], user: str, content_length: int | None = None
) -> int:
    """Store the uploaded files (a name already there is replaced); return how many."""
    received = _receive_all(parts, content_length)
    return len(_store(projectid, received, user, user))


def check_token(projectid: int, token: str | None) -> dict[str, Any]:
    """Return the live upload token of the project (or of project 0), or raise Forbidden."""
    try:
        token = TOKEN.clean("token", token)
    except InvalidInput:
        token = None
    found = tokens.lookup(projectid, token) if token else None
    if found is None:
        raise Forbidden(
            f"token: send a valid upload token of project {projectid} in the 'token' header"
        )
    return found


def token_upload(
    projectid: int,
    token: Any,
    parts: Iterable[Part],
    params: dict[str, Any],
    content_length: int | None = None,
) -> dict[str, Any]:
    """Store files with an upload token; a job token then starts its job once per file
    with ``version=<file name>``. Return ``{count, uuids}``."""
    found = check_token(projectid, token)
    values = check(params, TOKEN_UPLOAD)
    signer = f"{token[:8]}@token"
    user = values["user"] or signer
    received = _receive_all(parts, content_length)
    if values["checkmd5"]:
        expected = values["checkmd5"].lower()
        wrong = [name for name, blob in received if blob.md5 != expected]
        if wrong:
            for _, blob in received:
                filestore.discard(blob)
            raise InvalidInput(f"checkmd5: does not match the md5 of {', '.join(wrong)}")
    rows = _store(projectid, received, user, signer)
    uuids = []
    if found["isjob"]:
        caller = auth.Principal(name=user, via_app=True)
        for row in rows:
            try:
                uuids.append(
                    tasks.run_job_byname(
                        projectid,
                        {"jobname": found["jobname"], "variable": {"version": row.name}},
                        caller,
                    )
                )
            except OpsjobError as e:
                raise Conflict(
                    f"jobname: the files were stored but job {found['jobname']} "
                    f"could not start: {e.info}"
                ) from None
    return {"count": len(rows), "uuids": uuids}


def open_file(projectid: int, params: dict[str, Any]) -> Download:
    """Open a stored file by ``name`` for download."""
    name = check(params, FILE)["name"]
    filestore.check_name("name", name)
    row: Any = filestore.live_row(projectid, name)  # not None once path is not
    path = filestore.path_of(_config(), projectid, name) if row is not None else None
    if path is None:
        raise NotFound(f"name: file {name} does not exist")
    return Download(name=row.name, size=row.size, md5=row.md5, stream=open(path, "rb"))


def link_file(projectid: int, params: dict[str, Any]) -> str:
    """Make a short-lived, single-use download link to a stored file by ``name`` and return
    its name (OpenC3's two-step download: the browser then opens ``/download/<link>``).

    A link is a small file under the file store, so any API node sharing the store serves it.
    """
    name = check(params, FILE)["name"]
    filestore.check_name("name", name)
    if filestore.live_row(projectid, name) is None:
        raise NotFound(f"name: file {name} does not exist")
    folder = _links_dir()
    _sweep_links(folder)
    link = token_urlsafe(24)
    record = {"projectid": projectid, "name": name, "expires": time.time() + LINK_SECONDS}
    fd = os.open(os.path.join(folder, link), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    return link


def open_link(link: str | None) -> Download:
    """Open the file behind a download link, using the link up; raise NotFound when it is
    unknown, used or expired."""
    try:
        link = LINK.clean("link", link)
    except InvalidInput:
        link = None
    gone = NotFound("link: unknown, used or expired download link")
    if link is None:
        raise gone
    folder = _links_dir()
    claimed = os.path.join(folder, f"{link}.used.{token_hex(8)}")
    try:  # one rename wins, so a link serves one download however many ask at once
        os.rename(os.path.join(folder, link), claimed)
    except FileNotFoundError:
        raise gone from None
    try:
        with open(claimed) as f:
            record = json.load(f)
    finally:
        os.unlink(claimed)
    if record["expires"] < time.time():
        raise gone
    return open_file(record["projectid"], {"name": record["name"]})


def _links_dir() -> str:
    folder = os.path.join(filestore.root(_config()), "links")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def _sweep_links(folder: str) -> None:
    """Remove links that expired without being used."""
    cutoff = time.time() - LINK_SECONDS
    for entry in os.scandir(folder):
        try:
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except FileNotFoundError:
            pass


def delete_file(projectid: int, fileid: int | str, user: str) -> bool:
    """Remove a file from the project's store (soft: the row stays, marked deleted)."""
    return soft_delete(in_project(FileServer, projectid, "id", fileid, "file"), user)
