"""Read a tree that a node or a user supplied without ever reading outside it.

Only regular files with a single link that lie inside the tree are read. Symbolic links, hard
links, devices, FIFOs and sockets are skipped and reported: they are never followed or opened.
Every lookup goes from a directory descriptor with ``O_NOFOLLOW``, so a link swapped in while
the tree is read cannot redirect a read either.
"""

import os
import stat
from dataclasses import dataclass, field
from typing import BinaryIO

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO that appeared after the check must not hang the reader.
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Unsafe(OSError):
    """A path that is not a regular, single-link file inside the tree."""


@dataclass
class Listing:
    """What a tree holds: readable files and directories, and what was skipped and why."""

    files: list[str] = field(default_factory=list)  # relative paths of regular files
    dirs: list[str] = field(default_factory=list)  # relative paths of directories
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)

    def notes(self) -> list[str]:
        """One line per skipped entry, for a log."""
        return [f"skipped {rel}: {reason}, not followed" for rel, reason in self.skipped]


def refusal(st: os.stat_result) -> str | None:
    """Return why an entry with stat result ``st`` must not be read, or None."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return None
    if stat.S_ISREG(mode):
        return "a hard link" if st.st_nlink > 1 else None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _open_dir(root: str) -> int:
    return os.open(os.path.normpath(root), _DIR)


def scan(root: str, recursive: bool = True) -> Listing:
    """List the tree under ``root`` (``root`` itself must be a real directory)."""
    listing = Listing()
    fd = _open_dir(root)
    try:
        _scan(fd, "", listing, recursive)
    finally:
        os.close(fd)
    listing.files.sort()
    listing.dirs.sort()
    listing.skipped.sort()
    return listing


def _scan(fd: int, prefix: str, listing: Listing, recursive: bool) -> None:
    for name in sorted(os.listdir(fd)):
        rel = prefix + name
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        reason = refusal(st)
        if reason:
            listing.skipped.append((rel, reason))
        elif stat.S_ISREG(st.st_mode):
            listing.files.append(rel)
        else:
            listing.dirs.append(rel)
            if recursive:
                try:
                    sub = os.open(name, _DIR, dir_fd=fd)
                except OSError:  # replaced by something else since the stat
                    listing.skipped.append((rel, "changed while it was read"))
                    continue
                try:
                    _scan(sub, rel + "/", listing, recursive)
                finally:
                    os.close(sub)


def open_file(root: str, rel: str) -> BinaryIO:
    """Open the regular file ``rel`` under ``root`` for binary reading, or raise Unsafe."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise Unsafe(f"{rel}: not a path inside the tree")
    fd = _open_dir(root)
    try:
        for part in parts[:-1]:
            try:
                sub = os.open(part, _DIR, dir_fd=fd)
            except OSError as e:
                raise Unsafe(f"{rel}: {part} is not a directory inside the tree") from e
            os.close(fd)
            fd = sub
        try:
            file_fd = os.open(parts[-1], _FILE, dir_fd=fd)
        except OSError as e:  # ELOOP: a symbolic link
            raise Unsafe(f"{rel}: not a regular file") from e
    finally:
        os.close(fd)
    return _checked(file_fd, rel)


def open_path(path: str) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular, single-link file, else raise Unsafe.

    The last component is never followed; use it for a known file in a directory that
    untrusted content may share (a run dir beside a pulled tree).
    """
    try:
        file_fd = os.open(path, _FILE)
    except OSError as e:
        raise Unsafe(f"{path}: not a regular file") from e
    return _checked(file_fd, path)


def _checked(file_fd: int, what: str) -> BinaryIO:
    try:
        st = os.fstat(file_fd)
        reason = refusal(st) or (None if stat.S_ISREG(st.st_mode) else "not a regular file")
        if reason:
            raise Unsafe(f"{what}: {reason}")
        os.set_blocking(file_fd, True)
        return os.fdopen(file_fd, "rb")
    except BaseException:
        os.close(file_fd)
        raise
