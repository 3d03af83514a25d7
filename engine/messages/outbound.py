"""Outbound HTTP requests that users aim (project webhooks) go only where an admin allows.

``OPSJOB_WEBHOOK_ALLOW`` is a comma-separated list of entries:

- ``public``: any globally routable address (the default list is just this);
- an address or CIDR (``10.20.0.0/16``, ``127.0.0.1``, ``fd00::/8``);
- a host pattern (``chat.example.com``, ``*.corp.example.com``): that name, whatever it
  resolves to.

A name is resolved and every address it gives must be allowed, when a URL is saved and again
when it is called. The request then connects to an address that was checked, never to a second
answer of the resolver, so DNS cannot rebind it. Redirects are never followed. Why a request
failed (refused connection, timeout, TLS) goes to the server log only: callers learn
:class:`Unreachable`, nothing that would tell an open port from a closed one.
"""

import fnmatch
import http.client
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PUBLIC = "public"
PATTERN = re.compile(r"[a-z0-9*]([a-z0-9*.-]*[a-z0-9*])?")
# Special-purpose ranges Python's ``is_global`` still counts as global.
NOT_PUBLIC = (ipaddress.ip_network("192.0.0.0/24"),)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Sockaddrs = Sequence[tuple[socket.AddressFamily, tuple[Any, ...]]]  # (family, sockaddr)


class Refused(Exception):
    """The destination is not allowed."""


class Unreachable(Exception):
    """The destination could not be resolved or reached (details only in the server log)."""


def is_public(addr: Address) -> bool:
    """Tell whether ``addr`` is globally routable: not loopback, link-local, private,
    unspecified, multicast, reserved or shared (CGNAT), nor an IPv6 form of such an address."""
    if addr.version == 6:
        if addr.ipv4_mapped is not None:
            return is_public(addr.ipv4_mapped)
        embedded = [addr.sixtofour, *(addr.teredo or ())]
        if any(e is not None and not is_public(e) for e in embedded):
            return False
    return (
        addr.is_global
        and not addr.is_multicast
        and not addr.is_reserved
        and not addr.is_private
        and not any(addr in net for net in NOT_PUBLIC if net.version == addr.version)
    )


def _plain(addr: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it stands for."""
    return addr.ipv4_mapped if addr.version == 6 and addr.ipv4_mapped is not None else addr


@dataclass(frozen=True)
class Policy:
    """Where outbound requests may go."""

    public: bool = True
    networks: tuple[Network, ...] = ()
    patterns: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> "tuple[Policy, list[str]]":
        """Return ``(policy, bad entries)`` for an ``OPSJOB_WEBHOOK_ALLOW`` value."""
        public, networks, patterns, bad = False, [], [], []
        for entry in (e.strip().lower() for e in (text or "").split(",")):
            if not entry:
                continue
            if entry == PUBLIC:
                public = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or ":" in entry or not PATTERN.fullmatch(entry.rstrip(".")):
                bad.append(entry)
            else:
                patterns.append(entry.rstrip("."))
        return cls(public, tuple(networks), tuple(patterns)), bad

    def allows_name(self, host: str) -> bool:
        return any(fnmatch.fnmatchcase(host, p) for p in self.patterns)

    def allows_address(self, addr: Address) -> bool:
        addr = _plain(addr)
        if self.public and is_public(addr):
            return True
        return any(addr in net for net in self.networks if net.version == addr.version)


_state = {"policy": Policy()}


def configure(text: str | None) -> Policy:
    """Set the policy from an ``OPSJOB_WEBHOOK_ALLOW`` value; log and skip bad entries (a
    skipped entry allows nothing)."""
    policy, bad = Policy.parse(text)
    for entry in bad:
        log.error("OPSJOB_WEBHOOK_ALLOW: %r is neither a host pattern nor a CIDR; ignored", entry)
    _state["policy"] = policy
    return policy


def policy() -> Policy:
    """Return the configured policy (``public`` until configured)."""
    return _state["policy"]


def _target(url: str) -> tuple[str, str, int]:
    """Return ``(scheme, host, port)`` of an http(s) URL; the host in its ASCII form."""
    parts = urlsplit(url)
    try:
        port = parts.port
        host = (parts.hostname or "").rstrip(".")
        host = host.encode("idna").decode("ascii") if host else ""
    except (ValueError, UnicodeError):
        raise Refused("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Refused("not an http(s) URL")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> Sockaddrs:
    """Return the distinct ``(family, sockaddr)`` a name resolves to, in resolver order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        log.info("outbound: %s does not resolve: %s", host, e)
        raise Unreachable(f"{host} does not resolve") from None
    seen, out = set(), []
    for family, _, _, _, sockaddr in infos:
        if sockaddr[0] not in seen:
            seen.add(sockaddr[0])
            out.append((family, sockaddr))
    return out


def checked_addresses(url: str, allow: Policy | None = None) -> Sockaddrs:
    """Resolve ``url``'s host; return its addresses if ``allow`` (a Policy; None: the
    configured one) allows every one of them, else raise Refused (or Unreachable)."""
    allow = policy() if allow is None else allow
    _, host, port = _target(url)
    addresses = resolve(host, port)
    if allow.allows_name(host):
        return addresses
    for _, sockaddr in addresses:
        addr = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not allow.allows_address(addr):
            raise Refused(f"{host} is not an allowed destination")
    return addresses


def check(url: str, allow: Policy | None = None) -> None:
    """Raise Refused (or Unreachable) unless ``url`` may be called; resolve its host only
    when a host pattern does not allow the name itself."""
    allow = policy() if allow is None else allow
    _, host, _ = _target(url)
    if not allow.allows_name(host):
        checked_addresses(url, allow)


class _Pinned(http.client.HTTPConnection):
    """Connect to ``addresses`` (resolved beforehand); the Host header and TLS keep the name."""

    addresses: Sockaddrs = ()

    def connect(self) -> None:
        error = None
        for family, sockaddr in self.addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
            except OSError as e:
                sock.close()
                error = e
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            return
        raise error or OSError("no address to connect to")


class _PinnedTLS(http.client.HTTPSConnection, _Pinned):
    """HTTPS over :class:`_Pinned`: the certificate is checked against the URL's host."""


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allow: Policy | None = None,
    trusted: bool = False,
) -> int:
    """POST ``body`` (bytes) to ``url``; return the response's status code.

    Unless ``trusted`` (an admin-set URL), every address of the host must be allowed by
    ``allow`` (None: the configured policy). Redirects are returned, never followed.
    """
    scheme, host, port = _target(url)
    addresses = resolve(host, port) if trusted else checked_addresses(url, allow)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if scheme == "https":
        conn: _Pinned = _PinnedTLS(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = _Pinned(host, port, timeout=timeout)
    conn.addresses = addresses
    try:
        conn.request("POST", path, body=body, headers={**headers, "Connection": "close"})
        resp = conn.getresponse()
        resp.read(1024)
        return resp.status
    except (OSError, http.client.HTTPException) as e:
        log.info("outbound: POST to %s://%s:%s failed: %s", scheme, host, port, e)
        raise Unreachable(f"{host} unreachable") from None
    finally:
        conn.close()
