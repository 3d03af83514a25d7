"""/slave: a task's log (JSON to tail, or a live page) and killtask. Any API node serves
any task: ``:slave`` is only the name of the worker recorded on the task."""

import html
import json
import re

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from api.http.sockets import request_key
from engine.run import control
from engine.tasklog import livelog

LOG_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>opsjob task {uuid}</title>
<style>body{{font:13px/1.4 monospace;background:#111;color:#ddd;margin:0}}
header{{padding:8px 12px;background:#222;position:sticky;top:0}}
pre{{margin:0;padding:12px;white-space:pre-wrap;word-break:break-all}}</style></head>
<body><header>task <b>{uuid}</b> · status <b id="status">…</b></header><pre id="log"></pre>
<script>
// The page holds no task data: it trades the key (from #key=) for a single-use ticket and
// follows the log over the websocket; the JSON route then tells the final status.
const uuid = {uuid_js};
const key = new URLSearchParams(location.hash.slice(1)).get("key");
const headers = key ? {{"Authorization": "Bearer " + key}} : {{}};
const status = document.getElementById("status"), log = document.getElementById("log");
let received = 0;
async function json(url, options) {{
  const r = await fetch(url, Object.assign({{headers: Object.assign(
    {{"Accept": "application/json", "Content-Type": "application/json"}}, headers)}}, options));
  return r.json();
}}
async function finish() {{
  const body = await json(location.pathname + "?offset=" + received);
  if (!body.stat) {{ status.textContent = body.info; return; }}
  if (body.data.log) log.append(document.createTextNode(body.data.log));
  received = body.data.offset;
  status.textContent = body.data.status;
  if (!body.data.done) setTimeout(follow, 1000);
}}
async function follow() {{
  const body = await json("/slave/ws/ticket", {{method: "POST", body: JSON.stringify({{uuid}})}});
  if (!body.stat) {{ status.textContent = body.info; return; }}
  const slave = location.pathname.split("/")[2];
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    "/slave/" + slave + "/ws?" + new URLSearchParams({{uuid, format: "text",
    ticket: body.data.ticket}}));
  ws.onopen = () => {{ status.textContent = "running"; }};
  ws.onmessage = (event) => {{
    if (received === 0 && event.data.startsWith("ERROR: ")) {{
      status.textContent = event.data; return;
    }}
    const skip = Math.max(0, received - ws.offset);
    ws.offset += event.data.length;
    if (skip < event.data.length) {{
      log.append(document.createTextNode(event.data.slice(skip)));
      received += event.data.length - skip;
      window.scrollTo(0, document.body.scrollHeight);
    }}
  }};
  ws.offset = 0;
  ws.onclose = (event) => {{ if (event.code < 4000) finish(); }};
}}
follow();
</script></body></html>
"""


class TaskLog:
    """A task's log."""

    @requires("public")
    @takes(control.LOG, produces=("application/json", "text/html"))
    def on_get(self, req: falcon.Request, resp: falcon.Response, slave: str, uuid: str) -> None:
        """Read a task's log from `offset`: {log, offset, done}; with Accept text/html, a page
        that follows the log live (give the key as `#key=` in the page URL)."""
        accept = req.get_header("Accept") or ""
        if "text/html" in accept and "offset" not in req.params:
            # The page holds no task data; its script fetches the log with the caller's key.
            resp.content_type = "text/html; charset=utf-8"
            resp.text = LOG_PAGE.format(
                uuid=html.escape(uuid[:12]), uuid_js=json.dumps(re.sub(r"[^A-Za-z0-9]", "", uuid))
            )
            return
        ok(
            resp,
            control.read_log(uuid, req.context.principal, req.get_param("offset", default="0")),
        )


class KillTask:
    """Stop a task."""

    @requires("login")
    @takes()
    def on_delete(self, req: falcon.Request, resp: falcon.Response, slave: str, uuid: str) -> None:
        """Kill a task: a running one stops within seconds, and so do its commands on the nodes."""
        ok(resp, info=control.kill(uuid, req.context.principal))


class SocketTicket:
    """Tickets for the live log websocket (a browser cannot send headers on one)."""

    @requires("login")
    @takes(livelog.TICKET)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Issue a single-use ticket (30 s) that opens one live log of a task: `uuid` (the log
        uuid) names it, and the key needs read on its project; give it as `ticket=` to the
        websocket /slave/:slave/ws?uuid=<log uuid>."""
        ok(resp, livelog.ticket(params(req), req.context.principal, request_key(req)))


ROUTES = [
    ("/slave/ws/ticket", SocketTicket()),
    ("/slave/{slave}/tasklog/{uuid}", TaskLog()),
    ("/slave/{slave}/killtask/{uuid}", KillTask()),
]
