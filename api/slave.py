"""/slave: a task's log (JSON to tail, or a live page) and killtask. Any API node serves
any task: ``:slave`` is only the name of the worker recorded on the task."""

import html

from engine import control

from .access import requires
from .envelope import ok

LOG_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>opsjob task {uuid}</title>
<style>body{{font:13px/1.4 monospace;background:#111;color:#ddd;margin:0}}
header{{padding:8px 12px;background:#222;position:sticky;top:0}}
pre{{margin:0;padding:12px;white-space:pre-wrap;word-break:break-all}}</style></head>
<body><header>task <b>{uuid}</b> · status <b id="status">…</b></header><pre id="log"></pre>
<script>
let offset = 0;
const key = new URLSearchParams(location.hash.slice(1)).get("key");
const headers = key ? {{"Authorization": "Bearer " + key}} : {{}};
async function tail() {{
  const r = await fetch(location.pathname + "?offset=" + offset,
                        {{headers: Object.assign({{"Accept": "application/json"}}, headers)}});
  const body = await r.json();
  if (!body.stat) {{ document.getElementById("status").textContent = body.info; return; }}
  const d = body.data;
  document.getElementById("log").append(document.createTextNode(d.log));
  document.getElementById("status").textContent = d.status;
  if (d.log) window.scrollTo(0, document.body.scrollHeight);
  offset = d.offset;
  if (!d.done) setTimeout(tail, d.log ? 200 : 1000);
}}
tail();
</script></body></html>
"""


class TaskLog:
    """A task's log."""

    @requires("public")
    def on_get(self, req, resp, slave, uuid):
        """Read a task's log from `offset`: {log, offset, done}; with Accept text/html, a page
        that follows the log live (give the key as `#key=` in the page URL)."""
        accept = req.get_header("Accept") or ""
        if "text/html" in accept and "offset" not in req.params:
            # The page holds no task data; its script fetches the log with the caller's key.
            resp.content_type = "text/html; charset=utf-8"
            resp.text = LOG_PAGE.format(uuid=html.escape(uuid[:12]))
            return
        ok(resp, control.read_log(uuid, req.context.principal, req.get_param("offset", default=0)))


class KillTask:
    """Stop a task."""

    @requires("login")
    def on_delete(self, req, resp, slave, uuid):
        """Kill a task: a running one stops within seconds, and so do its commands on the nodes."""
        ok(resp, info=control.kill(uuid, req.context.principal))


ROUTES = [
    ("/slave/{slave}/tasklog/{uuid}", TaskLog()),
    ("/slave/{slave}/killtask/{uuid}", KillTask()),
]
