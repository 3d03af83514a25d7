"""The console's terminal page (``GET /cmd/:projectid?node=X&bash=1``).

The page holds no project data: it reads the node and account from its query string and the
API key from its fragment (``#key=``, never sent to a server), trades the key for a
single-use ticket, and opens the terminal websocket with it. The screen is plain text:
escape sequences are dropped, carriage returns and backspaces are honoured.
"""

TERMINAL_PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>opsjob terminal</title>
<style>body{font:13px/1.35 monospace;background:#000;color:#ddd;margin:0}
header{padding:6px 12px;background:#222;position:sticky;top:0}
#screen{margin:0;padding:8px 12px;white-space:pre-wrap;word-break:break-all;min-height:80vh;
outline:none}.err{color:#f88}</style></head><body>
<header>terminal · <b id="node"></b> · as <b id="sudo"></b> · <span id="state">connecting</span>
</header><pre id="screen" tabindex="0"></pre>
<script>
const query = new URLSearchParams(location.search);
const key = new URLSearchParams(location.hash.slice(1)).get("key");
const node = query.get("node") || "", sudo = query.get("sudo") || "";
const screen = document.getElementById("screen"), state = document.getElementById("state");
document.getElementById("node").textContent = node;
document.getElementById("sudo").textContent = sudo || "login account";
let lines = [""], col = 0;
function show(text) {
  // Erase-to-end-of-line matters for line editing; every other sequence is dropped.
  text = text.replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, "").replace(/\x1b\[0?K/g, "\u0001")
             .replace(/\x1b\[[0-9;?<>=]*[ -\/]*[@-~]/g, "").replace(/\x1b[()][A-Za-z0-9]/g, "")
             .replace(/\x1b[=>78DEHMc]/g, "");
  for (const ch of text) {
    const last = lines.length - 1, line = lines[last];
    if (ch === "\n") { lines.push(""); col = 0; }
    else if (ch === "\r") col = 0;
    else if (ch === "\b") col = Math.max(0, col - 1);
    else if (ch === "\u0001") lines[last] = line.slice(0, col);
    else if (ch >= " " || ch === "\t") {
      lines[last] = line.slice(0, col).padEnd(col) + ch + line.slice(col + 1);
      col += 1;
    }
  }
  if (lines.length > 2000) lines = lines.slice(-2000);
  screen.textContent = lines.join("\n");
  window.scrollTo(0, document.body.scrollHeight);
}
const KEYS = {Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b", ArrowUp: "\x1b[A",
  ArrowDown: "\x1b[B", ArrowRight: "\x1b[C", ArrowLeft: "\x1b[D", Home: "\x1b[H", End: "\x1b[F",
  Delete: "\x1b[3~"};
async function start() {
  const headers = {"Content-Type": "application/json", "Accept": "application/json"};
  if (key) headers["Authorization"] = "Bearer " + key;
  const r = await fetch(location.pathname + "/ticket", {method: "POST", headers, body: "{}"});
  const body = await r.json();
  if (!body.stat) { state.textContent = body.info; state.className = "err"; return; }
  const cols = Math.max(20, Math.floor(screen.clientWidth / 8));
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    location.pathname + "/terminal?" + new URLSearchParams({node, sudo, cols, rows: 32,
    ticket: body.data.ticket}));
  ws.onopen = () => { state.textContent = "connected"; screen.focus(); };
  ws.onmessage = (event) => show(event.data);
  ws.onclose = (event) => {
    state.textContent = "closed" + (event.code >= 4000 ? " (" + event.code + ")" : "");
  };
  document.addEventListener("keydown", (event) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    let keys = KEYS[event.key];
    if (!keys && event.ctrlKey && event.key.length === 1) {
      const code = event.key.toUpperCase().charCodeAt(0) - 64;
      if (code > 0 && code < 32) keys = String.fromCharCode(code);
    } else if (!keys && event.key.length === 1 && !event.metaKey) keys = event.key;
    if (!keys) return;
    event.preventDefault();
    ws.send(JSON.stringify({input: keys}));
  });
  document.addEventListener("paste", (event) => {
    const text = event.clipboardData.getData("text");
    if (text && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({input: text}));
    event.preventDefault();
  });
}
start();
</script></body></html>
"""
