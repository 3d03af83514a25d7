"""The terminal websocket, ``/cmd/:projectid/terminal?node=X[&sudo=account]``: a PTY running
ssh to one machine of the project. Client frames are JSON, ``{"input": keys}`` or
``{"resize": [cols, rows]}``; server frames are the terminal's output as text."""

import asyncio
import codecs
import fcntl
import json
import os
import pty
import signal
import struct
import termios
from typing import Any

from api.http import sockets
from api.http.sockets import Message, Receive, Scope, Send
from engine.errors import OpsjobError
from engine.interactive import terminal

READ_SIZE = 64 * 1024


def _resize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _stop(proc: asyncio.subprocess.Process) -> None:
    for sig in (signal.SIGHUP, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return


async def serve(scope: Scope, receive: Receive, send: Send, projectid: str | int) -> None:
    """Open a shell on ``node`` for a caller with write on the project, and relay it."""
    if not await sockets.connected(receive):
        return
    params = sockets.query(scope)
    projectid = int(projectid)
    try:
        principal = await sockets.db(sockets.principal, scope, params, lambda: projectid)
        client = (scope.get("client") or ("",))[0]
        shell = await sockets.db(terminal.open_shell, projectid, params, principal, client)
    except OpsjobError as e:
        await sockets.refuse(send, e)
        return
    try:
        await _relay(shell, receive, send)
    finally:
        shell.close()


async def _relay(shell: Any, receive: Receive, send: Send) -> None:
    loop = asyncio.get_running_loop()
    master, slave = pty.openpty()
    _resize(master, shell.cols, shell.rows)
    try:
        proc = await asyncio.create_subprocess_exec(
            *shell.argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
    finally:
        os.close(slave)
    output: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(master, READ_SIZE)
        except OSError:  # EIO: every process holding the PTY has exited
            data = b""
        if not data:
            loop.remove_reader(master)
        output.put_nowait(data)

    loop.add_reader(master, readable)
    await send({"type": "websocket.accept"})
    lines = terminal.LineBuffer()

    async def on_message(message: Message) -> None:
        try:
            frame = json.loads(message.get("text") or "{}")
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        keys = frame.get("input")
        if isinstance(keys, str) and keys:
            os.write(master, keys.encode())
            for line in lines.feed(keys):
                await sockets.db(terminal.record, shell, line)
        size = frame.get("resize")
        if isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) for n in size):
            _resize(master, max(10, min(size[0], 1000)), max(5, min(size[1], 500)))

    gone = sockets.watch_disconnect(receive, on_message)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while True:
            reading = asyncio.ensure_future(output.get())
            await asyncio.wait([reading, gone], return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():
                reading.cancel()
                return  # the client left
            data = reading.result()
            if not data:
                break
            text = decoder.decode(data)
            if text:
                await send({"type": "websocket.send", "text": text})
        await send({"type": "websocket.send", "text": "\r\n[session closed]\r\n"})
        await send({"type": "websocket.close", "code": 1000})
    except OSError:
        return
    finally:
        gone.cancel()
        loop.remove_reader(master)
        _stop(proc)
        os.close(master)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            pass
