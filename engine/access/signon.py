"""Sign-on for a web UI in front of the API, without keys: the user a trusted authenticating
proxy names in a header, or the user OpenC3's Connector says a single-sign-on cookie belongs to.

Both are off until configured, and both must name an existing opsjob user who is not disabled;
that user's project roles apply as they apply to the user's keys. Callers look for a key first:
a request that carries one is judged by the key alone, never by its header or cookie.

A browser sends its cookie (and passes its proxy's session) along with requests that other
sites make it send, so a cross-site request is never signed on (see :func:`cross_site`).
"""

import hashlib
import http.client
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from engine.access.auth import Principal
from engine.errors import Unauthenticated, Unavailable
from engine.store import authversion
from engine.store.models import Role, User
from engine.store.settings import Settings, networks

log = logging.getLogger(__name__)

COOKIE_SECONDS = 30.0  # how long a process keeps what the Connector said about a cookie
COOKIE_MAX = 10000  # cookies kept at once per process
USER_SECONDS = 5.0  # and what it read about a signed-on user, while the auth version stands
CONNECTOR_TIMEOUT = 5.0
ANSWER_MAX = 64 * 1024  # bytes of the Connector's answer read at most
SAME_SITE = ("same-origin", "none")  # Sec-Fetch-Site values of requests a page made itself

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Config:
    """How this process signs users on (both ways off by default)."""

    proxy_from: tuple[Network, ...] = ()
    proxy_header: str = "x-forwarded-user"  # lower case, as headers are looked up
    userinfo_url: str = ""
    cookie: str = "sid"

    @property
    def enabled(self) -> bool:
        """Tell whether either way of signing on is on."""
        return bool(self.proxy_from or self.userinfo_url)


_config = Config()
_cookies: dict[str, tuple[float, str]] = {}  # sha256(cookie) -> (read at, user name or "")
_users: dict[str, tuple[int, float, Principal]] = {}  # name -> (auth version, read at, who)
_lock = threading.Lock()


def configure(settings: Settings) -> Config:
    """Set (and return) how this process signs users on, from ``settings``."""
    global _config
    _config = Config(
        proxy_from=tuple(networks(settings.auth_proxy_from)),
        proxy_header=settings.auth_proxy_header.lower(),
        userinfo_url=settings.sso_userinfo_url,
        cookie=settings.sso_cookie,
    )
    _cookies.clear()
    _users.clear()
    return _config


def config() -> Config:
    """How this process signs users on."""
    return _config


def principal(
    peer: str, headers: Mapping[str, str], cookies: Mapping[str, str]
) -> Principal | None:
    """Return the user this request signs on as, or None if it carries no sign-on honoured here.

    ``peer`` is the address of the connection's other end (never a forwarded-for header);
    ``headers`` maps lower-case names to values. Raise Unauthenticated for a sign-on that names
    nobody (or is cross-site), Unavailable when the Connector cannot be asked.
    """
    cfg = _config
    if cfg.proxy_from and trusted(peer, cfg.proxy_from):
        name = headers.get(cfg.proxy_header, "").strip()
        if name:
            _same_site(headers)
            return user_principal(name)
    token = cookies.get(cfg.cookie, "") if cfg.userinfo_url else ""
    if token:
        _same_site(headers)
        return user_principal(cookie_user(token, cfg.userinfo_url))
    return None


def trusted(peer: str, proxies: tuple[Network, ...]) -> bool:
    """Tell whether ``peer`` (an address; IPv4-mapped IPv6 counts as IPv4) is in ``proxies``."""
    try:
        addr = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in proxies)


def cross_site(headers: Mapping[str, str]) -> bool:
    """Tell whether a browser sent this request for another site (a form, a link, a script or
    a websocket on another page): ``Sec-Fetch-Site`` other than same-origin (or a typed URL);
    without it, an ``Origin`` whose host is not the request's ``Host`` (or
    ``X-Forwarded-Host``, which only a proxy or a same-origin script can set)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() not in SAME_SITE
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser, or a same-origin GET
    host = urlsplit(origin.strip()).netloc.lower()
    return not host or host not in (
        headers.get("host", "").strip().lower(),
        headers.get("x-forwarded-host", "").split(",")[0].strip().lower(),
    )


def _same_site(headers: Mapping[str, str]) -> None:
    if cross_site(headers):
        raise Unauthenticated("sign-on is not accepted on a cross-site request: send a key")


def user_principal(name: str) -> Principal:
    """Return the Principal of the enabled user called ``name`` (or, failing that, the one user
    whose email is ``name``: OpenC3 users sign on with their email); Unauthenticated if none."""
    version = authversion.current()
    kept = _users.get(name)
    if kept and kept[0] == version and time.monotonic() - kept[1] < USER_SECONDS:
        return kept[2]
    user = User.get_or_none(User.name == name)
    if user is None and "@" in name:
        same = list(User.select().where(User.email == name).limit(2))
        user = same[0] if len(same) == 1 else None
    if user is None:
        raise Unauthenticated(f"signed on as {name[:100]!r}, who is not an opsjob user")
    if user.disabled:
        raise Unauthenticated("signed on as a disabled user")
    roles = {r.projectid: r.role for r in Role.select().where(Role.user_id == user.id)}
    who = Principal(name=user.name, user_id=user.id, admin=user.admin, roles=roles)
    with _lock:
        if len(_users) >= COOKIE_MAX:
            _users.clear()
        _users[name] = (version, time.monotonic(), who)
    return who


def cookie_user(cookie: str, url: str) -> str:
    """Return the user name the Connector at ``url`` gives for ``cookie``, asking it at most
    once per COOKIE_SECONDS per cookie; Unauthenticated if it knows no user."""
    digest = hashlib.sha256(cookie.encode()).hexdigest()
    kept = _cookies.get(digest)
    if kept and time.monotonic() - kept[0] < COOKIE_SECONDS:
        name = kept[1]
    else:
        name = ask_connector(url, cookie)
        with _lock:
            if len(_cookies) >= COOKIE_MAX:
                _forget_old()
            _cookies[digest] = (time.monotonic(), name)
    if not name:
        raise Unauthenticated("unknown single-sign-on cookie")
    return name


def _forget_old() -> None:
    cutoff = time.monotonic() - COOKIE_SECONDS
    for digest in [d for d, (at, _) in _cookies.items() if at < cutoff]:
        del _cookies[digest]
    if len(_cookies) >= COOKIE_MAX:
        _cookies.clear()


def ask_connector(url: str, cookie: str) -> str:
    """Ask OpenC3's Connector who ``cookie`` belongs to (``GET <url>?cookie=...``, as OpenC3's
    JOB asks it); return the user name, or "" for nobody. Unavailable if it cannot answer.

    The URL is admin configuration, so it is called as set; redirects are not followed, and
    why a call failed goes to the server log only.
    """
    parts = urlsplit(url)
    path = (parts.path or "/") + "?" + (parts.query + "&" if parts.query else "")
    path += "cookie=" + quote(cookie, safe="")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.netloc, timeout=CONNECTOR_TIMEOUT)
    try:
        conn.request("GET", path, headers={"Accept": "application/json", "Connection": "close"})
        resp = conn.getresponse()
        status, body = resp.status, resp.read(ANSWER_MAX)
    except (OSError, http.client.HTTPException) as e:
        log.warning("sign-on: the Connector at %s://%s failed: %s", parts.scheme, parts.netloc, e)
        raise Unavailable("single sign-on: the Connector cannot be reached") from None
    finally:
        conn.close()
    return _user_of(status, body, parts.netloc)


def _user_of(status: int, body: bytes, where: str) -> str:
    """The user name in a Connector answer: ``{"stat": true, "data": {"user": ...}}`` (or, from
    older Connectors, ``"data": "name"``); "" when it names nobody (``stat`` false included,
    as OpenC3's JOB reads it). Unavailable for an answer that is not such JSON."""
    try:
        answer: Any = json.loads(body) if status == 200 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or "stat" not in answer:
        log.warning("sign-on: the Connector at %s answered HTTP %s: %.200r", where, status, body)
        raise Unavailable("single sign-on: the Connector did not answer")
    data = answer.get("data") if answer["stat"] is True else None
    user = data.get("user") if isinstance(data, dict) else data
    return user.strip() if isinstance(user, str) else ""
