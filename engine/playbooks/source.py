"""Fetch the playbook project a playbook step names, into a per-worker cache directory.

Three forms: ``fileserver:<name>`` (a .tar.gz or .zip of the project's file store, unpacked
member by member: regular files and directories only, no absolute paths or ``..``, bounded
size and count), ``git:<url>[#<ref>]`` (a shallow fetch of one commit, cached by commit) and
``path:<dir>`` (a worker directory under one the operator listed). The runner copies the
fetched tree into the run dir; nothing here runs Ansible.
"""

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from engine.errors import InvalidInput
from engine.files import filestore, safetree

if TYPE_CHECKING:
    from engine.store.settings import Settings

MAX_BYTES = 256 * 1024 * 1024  # unpacked size of one archive
MAX_MEMBERS = 20000
GIT_TIMEOUT = 120
KINDS = ("fileserver", "git", "path")
ENTRY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
GIT_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}")
SHA = re.compile(r"[0-9a-f]{40}")


def parse(source: str | None) -> tuple[str, str]:
    """Split ``source`` into ``(kind, rest)`` or raise InvalidInput naming the field."""
    kind, sep, rest = (source or "").partition(":")
    if not sep or kind not in KINDS or not rest:
        raise InvalidInput("source: must be fileserver:<name>, git:<url>[#<ref>] or path:<dir>")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in rest):
        raise InvalidInput("source: must not contain control characters")
    return kind, rest


def check_entry(entry: str) -> str:
    """Check the playbook file name: relative, inside the source, a plain path."""
    if not ENTRY.fullmatch(entry or "") or ".." in entry.split("/"):
        raise InvalidInput("playbook: must be a relative path inside the source, e.g. site.yml")
    if not entry.endswith((".yml", ".yaml")):
        raise InvalidInput("playbook: must name a .yml or .yaml file")
    return entry


def cache_root(settings: "Settings") -> str:
    """Where this worker keeps fetched sources."""
    return os.path.join(os.path.abspath(settings.home), "playbook-cache")


def fetch(settings: "Settings", projectid: int, source: str) -> str:
    """Return a local directory holding the source's tree (fetched now or cached)."""
    kind, rest = parse(source)
    if kind == "fileserver":
        return _from_store(settings, projectid, rest)
    if kind == "git":
        return _from_git(settings, rest)
    return _from_path(settings, rest)


def _publish(settings: "Settings", key: str, fill: Callable[[str], object]) -> str:
    """Return the cache dir ``key``, filling it through ``fill(tmpdir)`` when it is missing."""
    root = cache_root(settings)
    final = os.path.join(root, key)
    if os.path.isdir(final):
        return final
    os.makedirs(root, mode=0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".fill-", dir=root)
    try:
        tree = os.path.join(tmp, "tree")
        os.mkdir(tree, 0o755)
        fill(tree)
        try:
            os.rename(tree, final)
        except OSError:  # another run filled it meanwhile
            if not os.path.isdir(final):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# -- file store archives


def _from_store(settings: "Settings", projectid: int, name: str) -> str:
    try:
        path = filestore.path_of(settings, projectid, name)
    except InvalidInput as e:
        raise InvalidInput(f"source: {e.info}") from None
    if path is None:
        raise InvalidInput(f"source: file {name} is not in the project's file store")
    if name.endswith((".tar.gz", ".tgz")):
        unpack = _untar
    elif name.endswith(".zip"):
        unpack = _unzip
    else:
        raise InvalidInput("source: a file-store source must be a .tar.gz or .zip")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)

    def fill(tree: str) -> None:
        unpack(path, tree)
        left = safetree.scan(tree).skipped  # nothing but files and directories may remain
        if left:
            raise InvalidInput(f"source: {left[0][0]} is {left[0][1]}")

    return _publish(settings, f"{unpack.__name__[1:]}-{digest.hexdigest()}", fill)


def _member_path(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise InvalidInput(f"source: archive member {name!r} points outside the archive")
    return "/".join(parts)


class _Budget:
    def __init__(self) -> None:
        self.bytes = 0
        self.members = 0

    def member(self) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise InvalidInput(f"source: the archive has more than {MAX_MEMBERS} members")

    def copy(self, src: IO[bytes], dst_path: str, mode: int) -> None:
        fd = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: src.read(1 << 16), b""):
                self.bytes += len(chunk)
                if self.bytes > MAX_BYTES:
                    raise InvalidInput(
                        f"source: the archive unpacks to more than {MAX_BYTES} bytes"
                    )
                out.write(chunk)


def _place(tree: str, rel: str, is_dir: bool) -> str:
    """Return the absolute path for member ``rel`` after making its parent directories."""
    path = os.path.join(tree, rel)
    os.makedirs(os.path.dirname(path) if not is_dir else path, mode=0o755, exist_ok=True)
    return path


def _untar(archive, tree):
    budget = _Budget()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                budget.member()
                rel = _member_path(member.name)
                if member.issym() or member.islnk():
                    raise InvalidInput(f"source: archive member {member.name!r} is a link")
                if member.isdir():
                    if rel:
                        _place(tree, rel, True)
                    continue
                if not member.isfile():
                    raise InvalidInput(f"source: archive member {member.name!r} is not a file")
                if not rel:
                    continue
                path = _place(tree, rel, False)
                budget.copy(tar.extractfile(member), path, 0o755 if member.mode & 0o111 else 0o644)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InvalidInput(f"source: cannot unpack the archive: {e}") from None


def _unzip(archive: str, tree: str) -> None:
    budget = _Budget()
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                budget.member()
                rel = _member_path(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise InvalidInput(f"source: archive member {info.filename!r} is a link")
                if info.is_dir():
                    if rel:
                        _place(tree, rel, True)
                    continue
                if stat.S_IFMT(mode) and not stat.S_ISREG(mode):  # no type bits: a file
                    raise InvalidInput(f"source: archive member {info.filename!r} is not a file")
                if not rel:
                    continue
                path = _place(tree, rel, False)
                with zf.open(info) as src:
                    budget.copy(src, path, 0o755 if mode & 0o111 else 0o644)
    except (zipfile.BadZipFile, OSError, RuntimeError) as e:
        raise InvalidInput(f"source: cannot unpack the archive: {e}") from None


# -- git


def _git_env(settings: "Settings") -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),  # no user configuration, no credentials helper
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": settings.playbook_git_protocols,
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    }


def _git(settings: "Settings", *args: str, cwd: str | None = None) -> str:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=_git_env(settings),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise InvalidInput(f"source: git {args[0]} took longer than {GIT_TIMEOUT} s") from None
    if out.returncode != 0:
        why = (out.stderr.strip().splitlines() or ["failed"])[-1][:300]
        raise InvalidInput(f"source: git {args[0]} failed: {why}")
    return out.stdout


def _from_git(settings: "Settings", rest: str) -> str:
    url, _, ref = rest.partition("#")
    ref = ref or "HEAD"
    if not url or url.startswith("-") or not GIT_REF.fullmatch(ref) or ".." in ref:
        raise InvalidInput("source: must be git:<url>[#<branch, tag or commit>]")
    if SHA.fullmatch(ref):
        commit = ref
    else:
        listed = _git(settings, "ls-remote", "--", url, ref).split()
        if not listed:
            raise InvalidInput(f"source: {ref} is not a branch or tag of the repository")
        commit = listed[0]
    key = "git-" + hashlib.sha256(url.encode()).hexdigest()[:16] + "-" + commit

    def fill(tree: str) -> None:
        _git(settings, "init", "-q", tree)
        _git(settings, "fetch", "-q", "--depth", "1", "--", url, commit, cwd=tree)
        _git(settings, "-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD", cwd=tree)
        shutil.rmtree(os.path.join(tree, ".git"))

    return _publish(settings, key, fill)


# -- worker directories


def _from_path(settings: "Settings", rest: str) -> str:
    roots = [os.path.realpath(r) for r in settings.playbook_paths.split(":") if r]
    if not roots:
        raise InvalidInput("source: path: sources are off (an admin lists worker directories)")
    if not os.path.isabs(rest):
        raise InvalidInput("source: path: must be an absolute directory")
    real = os.path.realpath(rest)
    if not any(real == r or real.startswith(r.rstrip("/") + "/") for r in roots):
        raise InvalidInput("source: path: is not under a directory an admin allowed")
    if not os.path.isdir(real):
        raise InvalidInput(f"source: {rest} is not a directory on the worker")
    return real
