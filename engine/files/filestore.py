"""The file store: content-addressed blobs under ``OPSJOB_HOME`` and the rows that name them.

A blob lives at ``filestore/blobs/<sha256[:2]>/<sha256>`` and never changes; a ``fileserver``
row gives it a name in one project. File names are only row values: no name ever becomes a
path, so a name cannot reach outside the store. Incoming data is streamed to a temporary file
(hashed on the way) and moved into place once it is complete.
"""

import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from peewee import IntegrityError

from engine.errors import InvalidInput, TooLarge
from engine.files import safetree
from engine.store.clock import now
from engine.store.models import FileServer, database

if TYPE_CHECKING:
    from engine.store.settings import Settings

CHUNK = 1 << 20
MAX_NAME = 200
# Control characters, and the separators of POSIX and Windows paths.
BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
# A pull into the store runs on the controller itself, with the worker's own Python.
STORE_TARGET = {
    "ansible_connection": "local",
    "ansible_host": "127.0.0.1",
    "ansible_python_interpreter": sys.executable,
}


class Readable(Protocol):
    """What incoming bytes are read from: a file, or an upload part's stream."""

    def read(self, size: int, /) -> bytes: ...


@dataclass
class Blob:
    """A complete incoming file: where it waits, and what it is."""

    path: str  # a temporary file until :func:`keep` moves it into the store
    size: int
    md5: str
    sha256: str


def root(settings: "Settings") -> str:
    """Return the absolute directory of the file store."""
    return os.path.join(os.path.abspath(settings.home), "filestore")


def blob_path(settings: "Settings", sha256: str) -> str:
    """Return where the blob with this SHA-256 lives."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        raise ValueError(f"sha256: not a digest: {sha256!r}")
    return os.path.join(root(settings), "blobs", sha256[:2], sha256)


def check_name(field: str, name: object) -> str:
    """Return ``name`` if it is a plain file name, else raise InvalidInput naming ``field``."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{field}: a file name is required")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"{field}: file name longer than {MAX_NAME} characters")
    if BAD_NAME.search(name) or name in (".", ".."):
        raise InvalidInput(
            f"{field}: not a plain file name {name!r} "
            "(no path separators, NUL or control characters, '.' or '..')"
        )
    return name


def receive(settings: "Settings", chunks: Iterable[bytes], field: str, limit: float) -> Blob:
    """Write the byte chunks of one incoming file to a temporary file, hashing them.

    Raise TooLarge (and leave nothing behind) once more than ``limit`` bytes arrived.
    """
    folder = os.path.join(root(settings), "tmp")
    os.makedirs(folder, exist_ok=True)
    md5, sha256, size = hashlib.md5(), hashlib.sha256(), 0
    fd, path = tempfile.mkstemp(dir=folder, prefix="in-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"{field}: larger than the upload limit of {limit} bytes")
                md5.update(chunk)
                sha256.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return Blob(path=path, size=size, md5=md5.hexdigest(), sha256=sha256.hexdigest())


def read_chunks(stream: Readable, size: int = CHUNK) -> Iterator[bytes]:
    """Yield ``stream`` in chunks of at most ``size`` bytes."""
    while True:
        chunk = stream.read(size)
        if not chunk:
            return
        yield chunk


def discard(blob: Blob) -> None:
    """Remove an incoming file that will not be kept."""
    try:
        os.unlink(blob.path)
    except FileNotFoundError:
        pass


def keep(settings: "Settings", blob: Blob) -> str:
    """Move an incoming file into the store (a blob already there is simply reused)."""
    final = blob_path(settings, blob.sha256)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    try:  # a reused blob is fresh again: the prune (engine.ops.retention) leaves it
        os.utime(final)
        discard(blob)
    except FileNotFoundError:
        os.replace(blob.path, final)
    return final


def record(
    projectid: int, name: str, blob: Blob, create_user: str, edit_user: str
) -> FileServer | None:
    """Name ``blob`` ``name`` in the project: a row of the same name is replaced (new id)."""
    for attempt in range(3):
        try:
            with database.atomic():
                FileServer.delete().where(
                    FileServer.projectid == projectid,
                    FileServer.name == name,
                    FileServer.status != "deleted",
                ).execute()
                stamp = now()
                return FileServer.create(
                    projectid=projectid,
                    name=name,
                    size=blob.size,
                    md5=blob.md5,
                    sha256=blob.sha256,
                    create_user=create_user[:100],
                    create_time=stamp,
                    edit_user=edit_user[:100],
                    edit_time=stamp,
                )
        except IntegrityError:  # a concurrent upload of the same name won; replace it
            if attempt == 2:
                raise
    return None


def live_row(projectid: int, name: str) -> FileServer | None:
    """Return the live row named ``name`` in the project, or None."""
    return (
        FileServer.select()
        .where(
            FileServer.projectid == projectid,
            FileServer.name == name,
            FileServer.status != "deleted",
        )
        .first()
    )


def path_of(settings: "Settings", projectid: int | str, name: str) -> str | None:
    """Return the absolute path of the blob named ``name`` in the project's store, or None."""
    check_name("sp", name)
    row = live_row(int(projectid), name)
    if row is None:
        return None
    path = blob_path(settings, row.sha256)
    return path if os.path.isfile(path) else None


def staging_dir(settings: "Settings", key: str) -> str:
    """Return an empty directory for one pull into the store (``key`` names the task).

    Pulled trees are kept out of the run dirs, whose sweep reads files by name.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key or ""):
        raise ValueError(f"key: not a task uuid: {key!r}")
    path = os.path.join(os.path.abspath(settings.home), "pulls", key)
    if os.path.islink(path):
        os.unlink(path)
    shutil.rmtree(path, ignore_errors=True)  # what a failed attempt left behind
    return path + "/"


def store_pulled(settings: "Settings", projectid: int | str, staging: str, user: str) -> str:
    """Move the file an scp step pulled into ``staging`` into the project's store.

    The pulled tree came from a node, so it is read with :mod:`engine.files.safetree`: only a
    regular file inside it is stored; links, devices and the like are skipped, and the
    answer (the step's log line) names each one.
    """
    try:
        try:
            listing = safetree.scan(staging, recursive=False)
        except OSError as e:  # nothing arrived, or not as a directory
            raise InvalidInput(f"sp: the pulled tree cannot be read ({e.strerror})") from None
        notes = listing.notes()
        if len(listing.files) != 1 or listing.dirs:
            if listing.dirs:
                found = "a directory"
            else:
                found = "more than one file" if listing.files else "no regular file"
            problem = f"sp: the file store keeps single files, and the source holds {found}"
            raise InvalidInput("; ".join([problem] + notes))
        name = check_name("sp", listing.files[0])
        with safetree.open_file(staging, name) as f:
            blob = receive(settings, read_chunks(f), "sp", limit=float("inf"))
        keep(settings, blob)
        record(int(projectid), name, blob, user, user)
        return "\n".join(
            notes + [f"stored {name} in the file store of project {projectid} for {user}"]
        )
    except safetree.Unsafe as e:
        raise InvalidInput(f"sp: {e}") from None
    finally:  # without its trailing slash, so that a link there is not followed
        shutil.rmtree(os.path.normpath(staging), ignore_errors=True)
