"""The live log websocket, ``/slave/:slave/ws?uuid=<loguuid>``: what the log holds, then each
new line as it is written; it closes when the task (or the step) ends.

Frames are HTML by default, as OpenC3's web UI appends them (escaped text, ``<br>`` for each
newline); ``format=text`` sends the text as it is.
"""

import asyncio
import html

from api.http import sockets
from api.http.sockets import Receive, Scope, Send
from engine.errors import OpsjobError
from engine.tasklog import livelog

POLL = 0.25  # seconds between two looks at the database


def _frame(text: str, fmt: str) -> str:
    return text if fmt == "text" else html.escape(text).replace("\n", "<br>")


async def serve(scope: Scope, receive: Receive, send: Send, slave: str) -> None:
    """Follow the log ``uuid`` names (``:slave`` is only the worker's name: any node serves)."""
    if not await sockets.connected(receive):
        return
    params = sockets.query(scope)
    loguuid, fmt = params.get("uuid", ""), params.get("format", "html")
    try:
        principal = await sockets.db(
            sockets.principal, scope, params, lambda: livelog.project_of(loguuid)
        )
        follower = await sockets.db(livelog.follow, loguuid, principal)
    except OpsjobError as e:
        await sockets.refuse(send, e)
        return
    await send({"type": "websocket.accept"})
    gone = sockets.watch_disconnect(receive)
    try:
        while True:
            text, done = await sockets.db(follower.poll)
            if text:
                await send({"type": "websocket.send", "text": _frame(text, fmt)})
            if done:
                break
            await asyncio.wait([gone], timeout=POLL)
            if gone.done():
                return
        await send({"type": "websocket.close", "code": 1000})
    except OSError:  # the client left while a frame was on its way
        return
    finally:
        gone.cancel()
