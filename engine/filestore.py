"""Where file-store files live on disk (the file-store routes come with their own issue)."""

import os
import shutil

from .errors import InvalidInput


def path_of(settings, projectid, name):
    """Return the absolute path of file ``name`` of the project's store, or None."""
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise InvalidInput(f"sp: not a file-store name: {name!r}")
    path = os.path.join(os.path.abspath(settings.home), "files", str(int(projectid)), name)
    return path if os.path.isfile(path) else None


def store_pulled(settings, projectid, staging, user):
    """Move the file an scp step pulled into ``staging`` into the project's store."""
    try:
        names = os.listdir(staging)
        if len(names) != 1 or not os.path.isfile(os.path.join(staging, names[0])):
            raise InvalidInput("sp: the file store keeps single files, not directories")
        folder = os.path.join(os.path.abspath(settings.home), "files", str(int(projectid)))
        os.makedirs(folder, exist_ok=True)
        shutil.move(os.path.join(staging, names[0]), os.path.join(folder, names[0]))
        return f"stored {names[0]} in the file store of project {projectid} for {user}"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
