"""Credentials: the login user, SSH private key and become password nodes are reached with.

A credential belongs to a project; those of project 0 are shared with every project. Node
groups and machines name the credential their hosts log in with. Secrets are encrypted at
rest (engine.store.secrets), accepted through the API but never returned, and handed to a run
only as files of its private data dir (engine.ansible.runner).
"""

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

from engine.ansible.playbook import Secret
from engine.errors import InvalidInput
from engine.store.listing import as_dict, common_filters, paged
from engine.store.models import Credential, database
from engine.store.records import in_project, save, soft_delete, unique
from engine.store.validate import NO_CONTROL, Field, check

# How a node group or a machine names the credential its hosts log in with (0: none).
NAMED = {"credential": Field(int, minimum=0, maximum=2**62)}
if TYPE_CHECKING:
    from engine.store.settings import Settings

FIELDS = (
    "id",
    "name",
    "username",
    "fingerprint",
    "describe",
    "create_user",
    "create_time",
    "edit_user",
    "edit_time",
)
MAX_KEY = 16 * 1024
CREDENTIAL = {
    "name": Field(required=True, pattern=r"[A-Za-z0-9_.@-]+", max_len=100, allow_empty=False),
    "username": Field(pattern=r"[A-Za-z0-9_][A-Za-z0-9._-]*", max_len=64),
    "describe": Field(max_len=200),
}
SECRETS = {
    "ssh_key": Field(pattern=NO_CONTROL, max_len=MAX_KEY),
    "become_password": Field(max_len=1024),
}
LIST_FILTERS = {"username": Field(pattern=r"[A-Za-z0-9._-]+", max_len=64)}


def register(huey: Any, settings: "Settings") -> None:
    """Start-up hook (engine.boot.EXTENSIONS): load the secret key."""
    from engine.store import secrets

    secrets.configure(settings)


def ensure_secret_key(settings: "Settings") -> str | None:
    """Create the key file that encrypts secrets unless a key is configured; return its path
    when a new one was written, else None."""
    from engine.store import secrets

    return secrets.key_file(settings) if secrets.ensure_key_file(settings) else None


def _fingerprint(key):
    """Check an SSH private key; return its normalized text and its public key's fingerprint."""
    from cryptography.hazmat.primitives import serialization

    text = key.replace("\r\n", "\n").strip() + "\n"
    data = text.encode("utf-8")
    try:
        if "BEGIN OPENSSH PRIVATE KEY" in text:
            private = serialization.load_ssh_private_key(data, password=None)
        else:
            private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidInput(
            "ssh_key: is protected by a passphrase; store it without one (opsjob encrypts it)"
        ) from None
    except Exception:
        raise InvalidInput("ssh_key: not an OpenSSH or PEM private key") from None
    try:
        public = private.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    except Exception:
        raise InvalidInput("ssh_key: a key type SSH cannot use") from None
    digest = hashlib.sha256(base64.b64decode(public.split()[1])).digest()
    return text, "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _secret_values(params: dict[str, Any]) -> dict[str, str]:
    """Return ``{column: token or ""}`` for the secrets present in ``params`` (None: keep)."""
    from engine.store import secrets

    key = params.get("ssh_key")
    values = check(
        {**params, "ssh_key": key.replace("\r\n", "\n") if isinstance(key, str) else key}, SECRETS
    )
    out: dict[str, str] = {}
    if "ssh_key" in params and params["ssh_key"] is not None:
        if values["ssh_key"]:
            text, out["fingerprint"] = _fingerprint(values["ssh_key"])
            out["ssh_key"] = secrets.encrypt("ssh_key", text)
        else:
            out["ssh_key"], out["fingerprint"] = "", ""
    if "become_password" in params and params["become_password"] is not None:
        password = values["become_password"] or ""
        out["become_password"] = secrets.encrypt("become_password", password) if password else ""
    return out


def _find(projectid: int, credential_id: int | str) -> Any:
    return in_project(Credential, projectid, "id", credential_id, "credential")


def _shape(row: Any) -> dict[str, Any]:
    return {
        **as_dict(row, FIELDS),
        "has_ssh_key": bool(row.ssh_key),
        "has_become_password": bool(row.become_password),
    }


def list_credentials(projectid: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """List the project's credentials, newest first; secrets show only as present or not."""
    values = check(params, LIST_FILTERS)
    query = Credential.select().where(
        Credential.projectid == projectid, Credential.status != "deleted"
    )
    query = common_filters(query, Credential, params)
    if values["username"]:
        query = query.where(Credential.username == values["username"])
    return [_shape(r) for r in paged(query.order_by(Credential.id.desc()), params)]


def save_credential(
    projectid: int, params: dict[str, Any], user: str, credential_id: int | str | None = None
) -> int:
    """Create a credential, or edit one of the project's; return its id.

    ``ssh_key`` and ``become_password`` are replaced when given, removed when given empty,
    and kept when left out (an edit never needs to send them again).
    """
    values = check(params, CREDENTIAL)
    values = {k: v or "" for k, v in values.items()}
    values.update(_secret_values(params))
    with database.atomic(), unique("name", values["name"]):
        row = None if credential_id is None else _find(projectid, credential_id)
        return save(Credential, projectid, values, user, row).id


def delete_credential(projectid: int, credential_id: int | str, user: str) -> bool:
    """Delete a credential (soft) and wipe its secrets; groups naming it stop resolving."""
    row = _find(projectid, credential_id)
    row.ssh_key = row.become_password = ""
    return soft_delete(row, user)


def _usable(projectid: int, credential_id: int) -> Any:
    return (
        Credential.select()
        .where(
            Credential.id == credential_id,
            Credential.projectid.in_([projectid, 0]),
            Credential.status != "deleted",
        )
        .first()
    )


def check_usable(projectid: int, value: Any) -> int:
    """Check the ``credential`` a group or machine of ``projectid`` names; return its id (0:
    none). Only a credential of the same project or of project 0 may be named."""
    if value is None or value == "" or value == 0 or value == "0":
        return 0
    cid = Field(int, minimum=1, maximum=2**62).clean("credential", value)
    if _usable(projectid, cid) is None:
        raise InvalidInput(
            f"credential: credential {cid} does not exist in project {projectid} or project 0"
        )
    return cid


def login(projectid: int, credential_id: int) -> tuple[str, Secret]:
    """Return ``(username, Secret)`` of a credential a host of ``projectid`` uses."""
    from engine.store import secrets

    row = _usable(projectid, credential_id)
    if row is None:
        raise InvalidInput(
            f"credential {credential_id}: does not exist any more in project {projectid} "
            "or project 0"
        )
    digest = hashlib.sha256(
        json.dumps([row.ssh_key, row.become_password]).encode("ascii")
    ).hexdigest()
    secret = Secret(
        ident=f"c{row.id}-{digest[:12]}",
        ssh_key=secrets.decrypt(f"credential {row.id}", row.ssh_key) if row.ssh_key else "",
        become_password=(
            secrets.decrypt(f"credential {row.id}", row.become_password)
            if row.become_password
            else ""
        ),
    )
    return row.username, secret
