"""``opsjob doctor``: check an installation, one line per check.

Each check returns ``(ok, detail)``; a check that raises counts as failed with its message.
The checks: which distributions provide opsjob's top-level import names, the database, the
queue, the secret key, the Ansible version, ssh (and the key exchanges it is told to offer),
and the free space of the file store.
"""

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

from engine.store import resources, secrets

if TYPE_CHECKING:
    from engine.store.settings import Settings

DISTRIBUTION = "opsjob"
ANSIBLE_CORE = ((2, 19), (2, 20))  # [low, high): the range setup.py pins
MIN_FREE_BYTES = 1 << 30
TIMEOUT = 5  # seconds a network check may take


def check_names() -> tuple[bool, str]:
    """Fail when another installed distribution provides one of opsjob's top-level names."""
    providers = importlib.metadata.packages_distributions()
    clashes = []
    for name in resources.TOP_LEVEL:
        others = sorted({d for d in providers.get(name, ()) if d.lower() != DISTRIBUTION})
        if others:
            clashes.append(f"{name} (also in {', '.join(others)})")
    if clashes:
        return False, "top-level names shared with other distributions: " + "; ".join(clashes)
    missing = [n for n in resources.TOP_LEVEL if importlib.util.find_spec(n) is None]
    if missing:
        return False, "not importable: " + ", ".join(missing)
    where = os.path.dirname(os.path.dirname(cast(Any, importlib.util.find_spec("engine")).origin))
    return True, f"{', '.join(resources.TOP_LEVEL)} from {where}; no other distribution has them"


def check_database(settings: "Settings") -> tuple[bool, str]:
    """Connect, run a query and compare the schema version with this code's."""
    from engine.store import schema
    from engine.store.db import database, open_database

    url = settings.database
    shown = _redact(url)
    try:
        open_database(url)
        with database.connection_context():
            database.execute_sql("SELECT 1")
            version = schema.current_version()
    except Exception as e:  # name the database the failure is about
        return False, f"{shown}: {_brief(e)}"
    if version != schema.LATEST:
        return False, f"{shown}: schema version {version}, this code needs {schema.LATEST} " + (
            "(run `opsjob init`)" if version < schema.LATEST else "(the code is older)"
        )
    return True, f"{shown}: schema version {version}"


def check_queue(settings: "Settings") -> tuple[bool, str]:
    """Reach the queue: ping Redis, or open the SQLite queue file."""
    url = settings.queue_url
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        try:
            client.ping()
        except Exception as e:  # name the queue the failure is about
            return False, f"{_redact(url)}: {_brief(e)}"
        return True, f"{_redact(url)}: answers"
    import sqlite3

    path = os.path.join(os.path.abspath(settings.home), "queue.db")
    if not os.path.exists(path):
        folder = os.path.dirname(path)
        if os.access(folder if os.path.isdir(folder) else os.path.dirname(folder), os.W_OK):
            return True, f"{path}: not created yet (the first worker creates it)"
        return False, f"{path}: its folder cannot be written"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        conn.close()
    return True, f"{path}: readable"


def check_secret_key(settings: "Settings") -> tuple[bool, str]:
    """Load the Fernet key(s) and check the key file is private."""
    try:
        fernet, source = secrets._load(settings)
    except ValueError as e:
        return False, str(e)
    if fernet is None:
        return False, "none configured: set OPSJOB_SECRET_KEY or run `opsjob init`"
    if source != "OPSJOB_SECRET_KEY" and os.stat(source).st_mode & 0o077:
        return False, f"{source}: readable by other users (chmod 600 it)"
    token = fernet.encrypt(b"doctor")
    if fernet.decrypt(token) != b"doctor":
        return False, f"{source}: does not decrypt what it encrypts"
    return True, f"from {source}"


def check_ansible() -> tuple[bool, str]:
    """Check the ansible-core version and that ansible-playbook sits next to this Python."""
    from ansible.release import __version__

    major_minor = tuple(int(p) for p in re.findall(r"\d+", __version__)[:2])
    low, high = ANSIBLE_CORE
    if not low <= major_minor < high:
        wanted = f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"
        return False, f"ansible-core {__version__}, opsjob needs {wanted}"
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    found = playbook if os.access(playbook, os.X_OK) else shutil.which("ansible-playbook")
    if not found:
        return False, f"ansible-core {__version__}, but no ansible-playbook on PATH"
    return True, f"ansible-core {__version__}, {found}"


def check_ssh(settings: "Settings") -> tuple[bool, str]:
    """Find the ssh client steps connect with, and check that it takes the key exchanges
    ``OPSJOB_SSH_KEX_ALGORITHMS`` names (one it does not know fails every connection)."""
    ssh = shutil.which("ssh")
    if not ssh:
        return False, "no ssh client on PATH (steps on remote nodes need OpenSSH)"
    out = subprocess.run([ssh, "-V"], capture_output=True, text=True, timeout=TIMEOUT)
    found = f"{ssh}: {(out.stderr or out.stdout).strip()}"
    kex = settings.ssh_kex_algorithms
    if not kex:
        return True, found
    # -G prints the configuration a connection would use, without connecting
    argv = [ssh, "-G", "-o", f"KexAlgorithms={kex}", "opsjob-doctor"]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
    )
    if out.returncode != 0:
        why = (out.stderr.strip().splitlines() or ["refused"])[-1]
        return False, f"{found}; OPSJOB_SSH_KEX_ALGORITHMS={kex}: {why}"
    offered = [line.split()[-1] for line in out.stdout.splitlines() if line.startswith("kexal")]
    return True, f"{found}; key exchanges offered: {offered[0] if offered else kex}"


def check_free_space(settings: "Settings", minimum: int = MIN_FREE_BYTES) -> tuple[bool, str]:
    """Report the free space where the file store lives; fail under ``minimum`` bytes."""
    from engine.files.filestore import root

    path = root(settings)
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    usage = shutil.disk_usage(probe)
    detail = f"{path}: {_size(usage.free)} free of {_size(usage.total)}"
    if usage.free < minimum:
        return False, f"{detail} (less than {_size(minimum)})"
    return True, detail


def checks(settings: "Settings") -> list[tuple[str, Callable[[], tuple[bool, str]]]]:
    """Return the checks in order, as ``(name, callable)``."""
    return [
        ("packages", check_names),
        ("database", lambda: check_database(settings)),
        ("queue", lambda: check_queue(settings)),
        ("secret key", lambda: check_secret_key(settings)),
        ("ansible", check_ansible),
        ("ssh", lambda: check_ssh(settings)),
        ("file store", lambda: check_free_space(settings)),
    ]


def run(settings: "Settings") -> Iterator[tuple[str, bool, str]]:
    """Run every check; yield ``(name, ok, detail)``."""
    for name, check in checks(settings):
        try:
            ok, detail = check()
        except Exception as e:  # a check that cannot even run has failed
            ok, detail = False, _brief(e)
        yield name, ok, " ".join(detail.split())


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def _redact(url: str) -> str:
    parts = urlparse(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
