"""Encryption of secrets at rest (credentials' SSH keys and become passwords).

The key comes from ``OPSJOB_SECRET_KEY`` (one or more Fernet keys, comma separated: the first
encrypts, every one decrypts, so a key can be rotated), or else from the file
``$OPSJOB_HOME/secret.key`` that ``opsjob init`` creates (mode 0600) when neither exists.
Without a key, secrets are refused with a clear error; nothing is ever stored in clear.
"""

import hashlib
import hmac
import logging
import os
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from engine.errors import InvalidInput

if TYPE_CHECKING:
    from engine.store.settings import Settings

log = logging.getLogger(__name__)

KEY_FILE = "secret.key"
_state: dict[str, Any] = {"settings": None, "fernet": None, "source": ""}


class SecretKeyError(InvalidInput):
    """No usable secret key is configured, or a stored secret does not decrypt with it."""


def key_file(settings: "Settings") -> str:
    """Return the path of the key file under ``settings.home``."""
    return os.path.join(os.path.abspath(settings.home), KEY_FILE)


def _load(settings: "Settings") -> tuple[MultiFernet | None, str]:
    """Return ``(MultiFernet or None, where the key came from)`` for ``settings``."""
    raw, source = settings.secret_key, "OPSJOB_SECRET_KEY"
    if not raw:
        path = key_file(settings)
        try:
            with open(path) as f:
                raw, source = f.read(), path
        except FileNotFoundError:
            return None, ""
    keys = [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()]
    try:
        return MultiFernet([Fernet(k) for k in keys]), source
    except ValueError:
        raise ValueError(
            f"{source}: not a Fernet key (32 url-safe base64-encoded bytes; make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key()"
            ".decode())'`)"
        ) from None


def configure(settings: "Settings | None") -> None:
    """Load the secret key of ``settings``; raise ValueError when it is malformed."""
    fernet, source = _load(settings) if settings is not None else (None, "")
    _state.update(settings=settings, fernet=fernet, source=source)
    if fernet is None:
        log.info("no secret key configured: credentials with secrets cannot be stored")


def ensure_key_file(settings: "Settings") -> bool:
    """Create ``$OPSJOB_HOME/secret.key`` (mode 0600) unless a key is configured; return
    True when a new key was written."""
    if settings.secret_key or os.path.exists(key_file(settings)):
        return False
    os.makedirs(os.path.abspath(settings.home), exist_ok=True)
    try:
        fd = os.open(key_file(settings), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return False
    with os.fdopen(fd, "w") as f:
        f.write(Fernet.generate_key().decode() + "\n")
    return True


def _fernet(field: str) -> MultiFernet:
    fernet = _state["fernet"]
    if fernet is None and _state["settings"] is not None:
        # the key file may have been created after start-up (``opsjob init`` run later)
        configure(_state["settings"])
        fernet = _state["fernet"]
    if fernet is None:
        raise SecretKeyError(
            f"{field}: cannot store or read secrets: no secret key is configured "
            "(set OPSJOB_SECRET_KEY, or run `opsjob init` to create $OPSJOB_HOME/secret.key)"
        )
    return fernet


def available() -> bool:
    """Tell whether secrets can be encrypted and decrypted now."""
    try:
        _fernet("secret")
    except SecretKeyError:
        return False
    return True


def sign(field: str, *parts: str) -> str:
    """Return a hex HMAC-SHA256 of ``parts`` under the first secret key, for links that stand
    in for a login; raise SecretKeyError naming ``field`` when no key is configured."""
    _fernet(field)
    settings = _state["settings"]
    raw = settings.secret_key
    if not raw:
        with open(key_file(settings)) as f:
            raw = f.read()
    first = raw.replace("\n", ",").split(",")[0].strip()
    key = hashlib.sha256(b"opsjob-link:" + first.encode()).digest()
    return hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()


def encrypt(field: str, text: str) -> str:
    """Return ``text`` encrypted (a Fernet token); ``field`` names it in errors."""
    return _fernet(field).encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(field: str, token: str) -> str:
    """Return the text of ``token``; raise SecretKeyError naming ``field`` when it fails."""
    try:
        return _fernet(field).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError, UnicodeError):
        raise SecretKeyError(
            f"{field}: cannot decrypt the stored secret: the secret key differs from the one "
            "it was stored with (check OPSJOB_SECRET_KEY on every API node and worker)"
        ) from None
