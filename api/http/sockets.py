"""Websocket plumbing shared by the live log and the terminal: who is calling, database work
off the event loop, and errors as close codes (4000 + the HTTP status the API would use)."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

import falcon

from api.http.envelope import STATUS
from engine.access import auth, signon, tickets
from engine.errors import OpsjobError, Unauthenticated
from engine.store.db import database

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
T = TypeVar("T")


def query(scope: Scope) -> dict[str, str]:
    """The query string of ``scope`` as ``{name: first value}``."""
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cookies(header: str) -> dict[str, str]:
    """The cookies of a ``Cookie`` header as ``{name: first value}``."""
    found: dict[str, str] = {}
    for pair in header.split(";"):
        name, _, value = pair.strip().partition("=")
        if name and name not in found:
            found[name] = value.strip().strip('"')
    return found


def _blocking(fn: Callable[..., T], *args: Any) -> T:
    with database.connection_context():
        return fn(*args)


async def db(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on a thread with a database connection."""
    return await asyncio.to_thread(_blocking, fn, *args)


def principal(
    scope: Scope, params: dict[str, str], projectid_of: Callable[[], int | None]
) -> auth.Principal:
    """Return the caller's Principal: ``Authorization: Bearer``, ``appname``/``appkey``, a
    ``ticket`` in the query string (for browsers), which ``projectid_of()`` must match, or a
    sign-on (a trusted proxy's user header, OpenC3's cookie) as the HTTP routes take it."""
    headers = _headers(scope)
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return auth.authenticate(bearer[7:].strip())
    if "appkey" in headers or "appname" in headers:
        return auth.authenticate(headers.get("appkey"), appname=headers.get("appname", ""))
    if params.get("ticket") or not signon.config().enabled:
        return tickets.redeem(params.get("ticket"), projectid_of())
    peer = (scope.get("client") or ("",))[0]
    signed_on = signon.principal(peer, headers, _cookies(headers.get("cookie", "")))
    if signed_on is None:
        raise Unauthenticated("missing credentials: send a key or a ticket")
    return signed_on


def close_code(error: OpsjobError) -> int:
    """The close code for an OpsjobError: 4000 + its HTTP status."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return 4000 + int(STATUS[cls].split()[0])
    return 4400


async def refuse(send: Send, error: OpsjobError) -> None:
    """Accept, say why in one text frame, and close with the error's code (a browser cannot
    read the status of a refused handshake)."""
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": f"ERROR: {error.info}"})
    await send({"type": "websocket.close", "code": close_code(error)})


async def connected(receive: Receive) -> bool:
    """Wait for the client's connect message; False if it left first."""
    message = await receive()
    return message["type"] == "websocket.connect"


def watch_disconnect(
    receive: Receive, on_message: Callable[[Message], Awaitable[None]] | None = None
) -> asyncio.Task[None]:
    """Start a task that reads the client's messages (passing each text to ``on_message``)
    and returns when the client disconnects."""

    async def reader() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if on_message is not None:
                await on_message(message)

    return asyncio.ensure_future(reader())


def request_key(req: falcon.Request) -> str:
    """The API key a Falcon request was authenticated with (to trade for a ticket)."""
    header = req.get_header("Authorization") or ""
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return req.get_header("appkey") or ""
