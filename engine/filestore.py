"""Where file-store files live on disk (the file-store routes come with their own issue)."""

import os

from .errors import InvalidInput


def path_of(settings, projectid, name):
    """Return the absolute path of file ``name`` of the project's store, or None."""
    if not name or "/" in name or "\x00" in name or name in (".", ".."):
        raise InvalidInput(f"sp: not a file-store name: {name!r}")
    path = os.path.join(os.path.abspath(settings.home), "files", str(int(projectid)), name)
    return path if os.path.isfile(path) else None
