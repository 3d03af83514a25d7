"""The ASGI entry: HTTP goes to the Falcon WSGI app (run on a thread pool by a2wsgi), and
websockets go to their handlers, all on one port.

Requests are read by the event loop, so a slow or idle client holds a coroutine, never one of
the threads that run the WSGI app.
"""

import gc
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from a2wsgi import WSGIMiddleware
from uvicorn_worker import UvicornWorker

from api.http.sockets import Message, Receive, Scope, Send
from api.server import live, terminal
from api.server.app import create_app
from engine.store.settings import Settings

WSGI_THREADS = 16  # requests the Falcon app runs at once per server process
access_log = logging.getLogger("opsjob.access")

SocketHandler = Callable[..., Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

# (path pattern, handler): each handler is ``async (scope, receive, send, **groups)``.
SOCKETS: list[tuple[re.Pattern[str], SocketHandler]] = [
    (re.compile(r"/slave/(?P<slave>[^/]+)/ws"), live.serve),
    (re.compile(r"/cmd/(?P<projectid>[0-9]{1,18})/terminal"), terminal.serve),
]


class Router:
    """Send HTTP to the WSGI app and websocket scopes to the handler of their path."""

    def __init__(self, http: ASGIApp, sockets: list[tuple[re.Pattern[str], SocketHandler]]) -> None:
        self.http = http
        self.sockets = sockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind in ("http", "websocket"):
            # WSGI reads X_Forwarded_User as X-Forwarded-User: a client could slip a second
            # user header past a proxy that replaces only the dashed one. Gunicorn drops such
            # headers by default; uvicorn does not, so they go here.
            scope["headers"] = [(k, v) for k, v in scope["headers"] if b"_" not in k]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            path = scope["path"].rstrip("/") or "/"
            for pattern, handler in self.sockets:
                match = pattern.fullmatch(path)
                if match:
                    await handler(scope, receive, send, **match.groupdict())
                    return
            await send({"type": "websocket.close", "code": 4404})
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The access log names the path only: a query string may carry a ticket or a token.
        started, status, rid = time.monotonic(), [0], [""]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                rid[0] = dict(message.get("headers") or ()).get(b"x-request-id", b"").decode()
            await send(message)

        try:
            await self.http(scope, receive, sending)
        finally:
            access_log.info(
                "%s %s %s %.0fms",
                scope["method"],
                scope["path"],
                status[0],
                (time.monotonic() - started) * 1000,
                extra={"request_id": rid[0]},  # the JSON log format prints it
            )


def create_asgi_app(settings: Settings) -> Router:
    """Return the ASGI app for ``settings``: the Falcon app plus the websocket routes."""
    app = wrap_wsgi(create_app(settings))
    # What start-up made (modules, the app, the models) lives as long as the process: keep it
    # out of the collector's full passes, which list replies otherwise trigger often.
    gc.freeze()
    return app


def wrap_wsgi(wsgi_app: Callable[..., Any]) -> Router:
    """Serve ``wsgi_app`` the way ``opsjob serve`` serves the API: on WSGI_THREADS threads
    behind a2wsgi, with the websocket routes beside it."""
    return Router(WSGIMiddleware(wsgi_app, workers=WSGI_THREADS), SOCKETS)


def get_asgi_app() -> Router:
    """Return the ASGI app configured from the environment (an ASGI server's entry point)."""
    return create_asgi_app(Settings.from_env())


class WithoutQuery(logging.Filter):
    """Cut the query string off any path a server log line prints: it may hold a ticket."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a.split("?", 1)[0] + "?…" if isinstance(a, str) and "?" in a else a
                for a in record.args
            )
        return True


class Worker(UvicornWorker):
    """The gunicorn worker class ``opsjob serve`` uses: uvicorn's event loop, httptools,
    websockets, the socket peer as the client address, no uvicorn access log, and no query
    string in uvicorn's own lines (it logs each websocket's path)."""

    CONFIG_KWARGS = {
        "loop": "asyncio",
        "http": "httptools",
        "ws": "websockets-sansio",
        "access_log": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "ws_max_size": 64 * 1024,
        # The client address is the connection's peer: a trusted proxy is told by it (see
        # OPSJOB_AUTH_PROXY_FROM), so no X-Forwarded-For may stand in for it.
        "proxy_headers": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("uvicorn.error", "uvicorn.access", "uvicorn"):
            logging.getLogger(name).addFilter(WithoutQuery())
