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
#hosts{{padding:8px 12px;border-bottom:1px solid #333}}
#hosts[hidden]{{display:none}}
#counts span{{margin-right:12px;font-weight:bold}}
.ok{{color:#6c6}} .failed,.unreachable,.timeout,.refused{{color:#e66}}
.skipped,.canceled{{color:#999}} .unknown{{color:#db3}}
table{{border-collapse:collapse;margin-top:6px}} td,th{{padding:1px 10px 1px 0;text-align:left;
vertical-align:top}} td.out{{white-space:pre-wrap;word-break:break-all;color:#aaa}}
pre{{margin:0;padding:12px;white-space:pre-wrap;word-break:break-all}}</style></head>
<body><header>task <b>{uuid}</b> · status <b id="status">…</b></header>
<section id="hosts" hidden><div id="counts"></div>
<select id="filter"><option value="">all</option></select>
<button id="prev">previous</button> <button id="next">next</button> <span id="where"></span>
<table><thead><tr><th>step</th><th>host</th><th>attempt</th><th>batch</th><th>status</th>
<th>rc</th><th>output</th></tr></thead><tbody id="rows"></tbody></table></section>
<pre id="log"></pre>
<script>
// The page holds no task data: it trades the key (from #key=) for a single-use ticket and
// follows the log over the websocket; the JSON route then tells the final status. The hosts
// panel reads one page of /task/:pid/:uuid/hosts at a time (its counts, total and rows), so a
// step on a thousand hosts draws a page of rows, never all of them.
const uuid = {uuid_js};
const hash = new URLSearchParams(location.hash.slice(1));
const key = hash.get("key");
const pagesize = Math.min(1000, Math.max(1, parseInt(hash.get("pagesize") || "50", 10) || 50));
const headers = key ? {{"Authorization": "Bearer " + key}} : {{}};
const status = document.getElementById("status"), log = document.getElementById("log");
const $ = (id) => document.getElementById(id);
let received = 0, projectid = null, page = 1, pages = 1, ended = false;
async function json(url, options) {{
  const r = await fetch(url, Object.assign({{headers: Object.assign(
    {{"Accept": "application/json", "Content-Type": "application/json"}}, headers)}}, options));
  return r.json();
}}
function cell(row, text, cls) {{
  const td = row.insertCell(); td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
}}
function lastLine(text) {{
  const lines = (text || "").split("\\n").filter((l) => l.trim());
  return lines.length ? lines[lines.length - 1].slice(0, 200) : "";
}}
function order(counts) {{
  return Object.keys(counts).sort((a, b) =>
    (a === "ok") - (b === "ok") || counts[b] - counts[a] || (a < b ? -1 : 1));
}}
async function hosts() {{
  if (projectid === null) return;
  const query = new URLSearchParams({{page, pagesize}});
  if ($("filter").value) query.set("status", $("filter").value);
  const body = await json("/task/" + projectid + "/" + uuid + "/hosts?" + query);
  if (!body.stat) {{ $("where").textContent = body.info; return; }}
  pages = Math.max(1, Math.ceil(body.total / pagesize));
  if (page > pages) {{ page = pages; return hosts(); }}
  const counts = body.counts, names = order(counts), all = names.reduce((n, s) => n + counts[s], 0);
  $("hosts").hidden = all === 0;
  $("counts").replaceChildren(...names.map((s) => {{
    const span = document.createElement("span");
    span.className = s; span.dataset.status = s; span.textContent = counts[s] + " " + s;
    return span;
  }}));
  const chosen = $("filter").value;
  const choices = chosen && !names.includes(chosen) ? [...names, chosen] : names;
  $("filter").replaceChildren(new Option("all (" + all + ")", ""),
    ...choices.map((s) => new Option(s + " (" + (counts[s] || 0) + ")", s)));
  $("filter").value = chosen;
  const rows = $("rows");
  rows.replaceChildren();
  for (const h of body.data) {{
    const row = rows.insertRow();
    cell(row, h.step.slice(0, 8)); cell(row, h.host); cell(row, h.attempt); cell(row, h.batch);
    cell(row, h.status, h.status); cell(row, h.rc);
    cell(row, lastLine(h.status === "ok" ? h.stdout : h.stderr || h.stdout), "out");
  }}
  const first = (page - 1) * pagesize + 1, last = Math.min(body.total, page * pagesize);
  $("where").textContent = body.total
    ? "hosts " + first + "-" + last + " of " + body.total + " · page " + page + " of " + pages
    : "no host " + chosen;
  $("prev").disabled = page <= 1; $("next").disabled = page >= pages;
}}
$("filter").onchange = () => {{ page = 1; hosts(); }};
$("prev").onclick = () => {{ page = Math.max(1, page - 1); hosts(); }};
$("next").onclick = () => {{ page = Math.min(pages, page + 1); hosts(); }};
setInterval(() => {{ if (!ended) hosts(); }}, 2000);
async function finish() {{
  const body = await json(location.pathname + "?offset=" + received);
  if (!body.stat) {{ status.textContent = body.info; return; }}
  if (body.data.log) log.append(document.createTextNode(body.data.log));
  received = body.data.offset;
  status.textContent = body.data.status;
  if (!body.data.done) setTimeout(follow, 1000);
  else {{ await hosts(); ended = true; }}
}}
async function follow() {{
  const body = await json("/slave/ws/ticket", {{method: "POST", body: JSON.stringify({{uuid}})}});
  if (!body.stat) {{ status.textContent = body.info; return; }}
  if (projectid === null) {{ projectid = body.data.projectid; hosts(); }}
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
        that follows the log live and shows the hosts' counts per status and one page of
        hosts (give the key as `#key=` in the page URL, optionally `&pagesize=`)."""
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
        websocket /slave/:slave/ws?uuid=<log uuid>. The answer names the log's `projectid`
        too, for a page that reads the task's other routes."""
        ok(resp, livelog.ticket(params(req), req.context.principal, request_key(req)))


ROUTES = [
    ("/slave/ws/ticket", SocketTicket()),
    ("/slave/{slave}/tasklog/{uuid}", TaskLog()),
    ("/slave/{slave}/killtask/{uuid}", KillTask()),
]
