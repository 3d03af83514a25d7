"""The SSH identity of a contained playbook run, offered as an agent rather than as key files.

A playbook step logs in the way a cmd step does: with its hosts' credential keys, and with the
worker's own identity (the keys in ``~/.ssh`` that plain ``ssh`` would use, and the worker's
ssh-agent). None of those files is visible inside the sandbox. :class:`Agent` holds the keys in
the worker's memory and answers the OpenSSH agent protocol on a socket of the run
(draft-miller-ssh-agent): it lists identities and signs, relaying requests for keys it does not
hold to the worker's own agent, and refuses everything else (adding, removing, locking keys).
It also refuses a connection that OpenSSH binds as *forwarded* (``session-bind@openssh.com``
with its forwarding flag): ``ssh -A`` from the playbook does not hand the identity to a node.
Since the sandbox reaches the network only through :mod:`engine.playbooks.broker`, the
signatures the agent makes can only log in to the step's own hosts.
"""

import base64
import logging
import os
import pwd
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

log = logging.getLogger(__name__)

FAILURE, SUCCESS = 5, 6
REQUEST_IDENTITIES, IDENTITIES_ANSWER = 11, 12
SIGN_REQUEST, SIGN_RESPONSE = 13, 14
EXTENSION = 27
RSA_SHA2_256, RSA_SHA2_512 = 2, 4
SESSION_BIND = b"session-bind@openssh.com"
MAX_MESSAGE = 256 * 1024
# The files plain ssh tries when no identity is configured (ssh_config(5), IdentityFile).
DEFAULT_IDENTITIES = ("id_rsa", "id_ecdsa", "id_ed25519", "id_dsa")
ECDSA_HASH: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "nistp256": hashes.SHA256,
    "nistp384": hashes.SHA384,
    "nistp521": hashes.SHA512,
}
_Key = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _mpint(n: int) -> bytes:
    data = n.to_bytes((n.bit_length() + 8) // 8, "big") if n else b""
    return _string(data)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def string(self) -> bytes:
        (n,) = struct.unpack_from(">I", self.data, self.at)
        start, self.at = self.at + 4, self.at + 4 + n
        if self.at > len(self.data):
            raise ValueError("truncated agent message")
        return self.data[start : self.at]

    def uint32(self) -> int:
        (n,) = struct.unpack_from(">I", self.data, self.at)
        self.at += 4
        return n

    def byte(self) -> int:
        value = self.data[self.at]
        self.at += 1
        return value


def load_key(text):
    """Parse an unencrypted private key (OpenSSH or PEM); None when it is not one we can use."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else text
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)) and not (
        isinstance(key, ec.EllipticCurvePrivateKey)
    ):
        return None
    return key


def public_blob(key: _Key) -> bytes:
    """The SSH wire form of ``key``'s public half."""
    return base64.b64decode(public_line(key).split()[1])


def public_line(key: _Key) -> str:
    """``key``'s public half as one line of an OpenSSH ``.pub`` file."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode("ascii")
    )


def _sign(key: _Key, blob: bytes, data: bytes, flags: int) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _string(b"ssh-ed25519") + _string(key.sign(data))
    if isinstance(key, rsa.RSAPrivateKey):
        algo: hashes.HashAlgorithm
        if flags & RSA_SHA2_512:
            name, algo = b"rsa-sha2-512", hashes.SHA512()
        elif flags & RSA_SHA2_256:
            name, algo = b"rsa-sha2-256", hashes.SHA256()
        else:
            name, algo = b"ssh-rsa", hashes.SHA1()  # noqa: S303 (the protocol's own default)
        return _string(name) + _string(key.sign(data, padding.PKCS1v15(), algo))
    name = _Reader(blob).string()  # ecdsa-sha2-nistpNNN
    curve = name.decode().rsplit("-", 1)[1]
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(ECDSA_HASH[curve]())))
    return _string(name) + _string(_mpint(r) + _mpint(s))


def ssh_dir() -> str:
    """The worker's ``~/.ssh`` as ssh finds it: in the account's home, whatever ``$HOME`` says."""
    return os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".ssh")


def worker_identity_files() -> list[str]:
    """The default identity files of the worker's ``~/.ssh`` that exist."""
    folder = ssh_dir()
    return [p for p in (os.path.join(folder, n) for n in DEFAULT_IDENTITIES) if os.path.isfile(p)]


def _recv_message(conn: socket.socket) -> bytes | None:
    head = _recv_exact(conn, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if not 0 < n <= MAX_MESSAGE:
        return None
    return _recv_exact(conn, n)


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _reply(conn: socket.socket, body: bytes) -> None:
    conn.sendall(_string(body))


class Agent:
    """The keys of one run and the worker's agent behind them (see the module docstring)."""

    def __init__(self, keys: Iterable[tuple[str, str]] = (), upstream: str | None = None) -> None:
        self.keys: dict[bytes, tuple[_Key, str]] = {}  # blob -> (private key, comment)
        for text, comment in keys:
            self.add(text, comment)
        self.upstream = upstream  # path of the worker's own agent socket, or None

    def add(self, text: str, comment: str = "") -> bytes | None:
        """Hold the private key ``text``; return its public blob, or None if unusable."""
        key = load_key(text)
        if key is None:
            return None
        blob = public_blob(key)
        self.keys.setdefault(blob, (key, comment))
        return blob

    def _ask_upstream(self, body: bytes) -> bytes | None:
        if not self.upstream:
            return None
        try:
            with socket.socket(socket.AF_UNIX) as up:
                up.settimeout(10)
                up.connect(self.upstream)
                _reply(up, body)
                return _recv_message(up)
        except OSError:
            return None

    def _identities(self) -> bytes:
        entries = [(blob, comment.encode()) for blob, (_, comment) in self.keys.items()]
        answer = self._ask_upstream(bytes([REQUEST_IDENTITIES]))
        if answer and answer[0] == IDENTITIES_ANSWER:
            try:
                r = _Reader(answer[1:])
                for _ in range(r.uint32()):
                    blob, comment = r.string(), r.string()
                    if blob not in self.keys:
                        entries.append((blob, comment))
            except (ValueError, struct.error, IndexError):
                pass
        body = bytes([IDENTITIES_ANSWER]) + struct.pack(">I", len(entries))
        return body + b"".join(_string(b) + _string(c) for b, c in entries)

    def answer(self, message: bytes, state: dict[str, Any]) -> bytes:
        """The reply to one request ``message``; ``state`` is the connection's own dict."""
        kind = message[0]
        if state.get("forwarded"):
            return bytes([FAILURE])
        if kind == REQUEST_IDENTITIES:
            return self._identities()
        if kind == SIGN_REQUEST:
            try:
                r = _Reader(message[1:])
                blob, data, flags = r.string(), r.string(), r.uint32()
            except (ValueError, struct.error, IndexError):
                return bytes([FAILURE])
            if blob in self.keys:
                try:
                    signature = _sign(self.keys[blob][0], blob, data, flags)
                except (ValueError, KeyError, TypeError):
                    return bytes([FAILURE])
                return bytes([SIGN_RESPONSE]) + _string(signature)
            return self._ask_upstream(message) or bytes([FAILURE])
        if kind == EXTENSION:
            try:
                r = _Reader(message[1:])
                if r.string() == SESSION_BIND:
                    r.string(), r.string(), r.string()  # host key, session id, signature
                    if r.byte():
                        state["forwarded"] = True  # ssh -A: this connection is a node's
                        return bytes([FAILURE])
                    return bytes([SUCCESS])
            except (ValueError, struct.error, IndexError):
                pass
        return bytes([FAILURE])

    def serve(self, conn: socket.socket) -> None:
        """Answer one client connection until it closes."""
        state: dict[str, Any] = {}
        with conn:
            conn.settimeout(300)
            while True:
                try:
                    message = _recv_message(conn)
                    if not message:
                        return
                    _reply(conn, self.answer(message, state))
                except OSError:
                    return
