"""/cmd: the command console (a page, and the call each typed command makes) and its log."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from api.http.sockets import request_key
from api.machines.terminal_page import TERMINAL_PAGE
from engine.access import auth, tickets
from engine.interactive import console
from engine.store import listing
from engine.store.validate import Field, check

# The page holds no project data: it reads the nodes and account from its own query string
# and the API key from its fragment (``#key=``, never sent to a server), and every command it
# sends goes through POST /cmd/:projectid with that key.
CONSOLE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>opsjob console</title>
<style>body{font:13px/1.4 monospace;background:#111;color:#ddd;margin:0}
header{padding:8px 12px;background:#222;position:sticky;top:0}
form{display:flex;gap:8px;padding:8px 12px;background:#1a1a1a}
#cmd{flex:1;font:inherit;background:#000;color:#eee;border:1px solid #444;padding:4px}
section{padding:4px 12px}h3{margin:8px 0 2px;color:#8cf;font-size:13px}
pre{margin:0;white-space:pre-wrap;word-break:break-all}.err{color:#f88}.ok{color:#8f8}</style>
</head><body>
<header>console · nodes <b id="nodes"></b> · as <b id="sudo"></b> ·
<span id="state">ready</span></header>
<form id="prompt"><input id="cmd" autocomplete="off" autofocus placeholder="command">
<button>run</button></form><div id="out"></div>
<script>
const query = new URLSearchParams(location.search);
const key = new URLSearchParams(location.hash.slice(1)).get("key");
const node = query.get("node") || "", sudo = query.get("sudo") || "";
document.getElementById("nodes").textContent = node;
document.getElementById("sudo").textContent = sudo || "login account";
function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}
document.getElementById("prompt").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("cmd"), cmd = input.value;
  if (!cmd) return;
  input.value = "";
  const state = document.getElementById("state");
  state.textContent = "running";
  const block = document.createElement("section");
  block.append(text("pre", "$ " + cmd));
  document.getElementById("out").prepend(block);
  const headers = {"Content-Type": "application/json", "Accept": "application/json"};
  if (key) headers["Authorization"] = "Bearer " + key;
  try {
    const r = await fetch(location.pathname, {method: "POST", headers,
      body: JSON.stringify({node, sudo, cmd})});
    let body = await r.json();
    if (!body.stat) { block.append(text("pre", body.info, "err")); return; }
    // The command runs on a worker: follow it until every node has answered.
    while (!body.data.done) {
      await new Promise((ok) => setTimeout(ok, 300));
      const polled = await fetch(location.pathname + "/result/" + body.data.uuid, {headers});
      body = await polled.json();
      if (!body.stat) { block.append(text("pre", body.info, "err")); return; }
    }
    for (const n of body.data.nodes) {
      const head = n.node + " [" + n.status + (n.rc === null ? "" : " rc=" + n.rc) + "]";
      const box = document.createElement("div");
      box.className = "node";
      box.dataset.node = n.node;
      box.append(text("h3", head, n.status === "ok" ? "ok" : "err"), text("pre", n.stdout));
      if (n.stderr) box.append(text("pre", n.stderr, "err"));
      block.append(box);
    }
  } catch (e) {
    block.append(text("pre", String(e), "err"));
  } finally {
    state.textContent = "ready";
  }
});
</script></body></html>
"""

PAGE = {"bash": Field(bool, default=False)}


class Console:
    """The command console of a project."""

    @requires("public")
    @takes(PAGE, produces=("text/html",), answers=(401, 403))
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Open the console page for `node` as `sudo` (give the key as `#key=` in the page
        URL); with `bash=1`, an interactive terminal on that one machine. A caller that
        sends a key must hold read on the project."""
        if req.context.principal is not None:
            auth.require(req.context.principal, projectid, "read")
        terminal = check(params(req), PAGE)["bash"]  # checked first: an error answers JSON
        resp.content_type = "text/html; charset=utf-8"
        resp.text = TERMINAL_PAGE if terminal else CONSOLE_PAGE

    @requires("write")
    @takes(console.RUN)
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Queue a command on nodes of the project: node (comma list), sudo, cmd, timeout
        (at most 60 s); answers at once with the task `uuid` and every node `pending`
        (follow it with GET /cmd/:projectid/result/:uuid)."""
        ok(resp, console.run(projectid, params(req), req.context.principal))


class Result:
    """Where a console command is."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int, uuid: str) -> None:
        """Each node's status, exit code and output (`pending` until it answered), and
        `done` once the command ended."""
        ok(resp, console.result(projectid, uuid))


class Ticket:
    """Tickets for the terminal's websocket (a browser cannot send headers on one)."""

    @requires("write")
    @takes()
    def on_post(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Issue a single-use ticket (30 s) that opens one terminal of the project; give it
        as `ticket=` to the websocket /cmd/:projectid/terminal."""
        principal = req.context.principal
        ok(resp, tickets.issue(principal, request_key(req), projectid, "write"))


class External:
    """OpenC3's database and Redis consoles through a node."""

    @requires("login")
    @takes(answers=(501,))
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, feature: str, projectid: int | None = None
    ) -> None:
        """Refused: opsjob has no database or Redis console (501)."""
        if projectid is not None:
            auth.require(req.context.principal, projectid, "read")
        if feature not in EXTERNAL:
            raise falcon.HTTPNotFound(description=f"no console feature {feature!r}")
        raise falcon.HTTPNotImplemented(
            description=f"the {EXTERNAL[feature]} console (/cmd/ext/{feature}) is not provided "
            "by opsjob: run its client in a console command or a terminal on a node"
        )


class Log:
    """Commands typed into the console."""

    @requires("read")
    @takes(console.LOG, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List console commands, newest first (filters: user, node, usr, cmd as substrings;
        time_start, time_end; paging)."""
        ok(resp, console.log(projectid, params(req)))


EXTERNAL = {"mysql": "MySQL", "redis": "Redis"}

ROUTES = [
    ("/cmd/{projectid:int}", Console()),
    ("/cmd/{projectid:int}/log", Log()),
    ("/cmd/{projectid:int}/result/{uuid}", Result()),
    ("/cmd/{projectid:int}/ticket", Ticket()),
    ("/cmd/ext/{feature}", External()),
    ("/cmd/ext/{feature}/{projectid:int}", External()),
]
