"""/approval: approvers' rows and opinions, signed in or through the one-time link."""

import html
from typing import Any

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.approval import records
from engine.store.validate import Field, check

LINK_OPINION = {
    "uuid": Field(required=True, pattern=r"[A-Za-z0-9_-]{20,64}", max_len=64),
    "opinion": Field(required=True, choices=("agree", "refuse")),
}
FAST = {"opinion": Field(default="", choices=("", "agree", "refuse"))}
STATUS = {"agree": ("agreed", "green"), "refuse": ("refused", "red")}


class Mine:
    """The caller's approvals."""

    @requires("login")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List the last 100 approvals addressed to the caller (its user name), newest first."""
        ok(resp, records.mine(req.context.principal.name))

    @requires("login")
    @takes(records.OPINION, answers=(404, 409))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Give the caller's opinion (agree|refuse) on its approval `uuid`; once only."""
        who = req.context.principal.name
        ok(resp, records.opinion_of_user(params(req), who, req.remote_addr or ""))


class OfTask:
    """The approvals of the task of one of the caller's approvals."""

    @requires("login")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, uuid: str) -> None:
        """List every approver's row of the task that the caller's approval `uuid` belongs to
        (empty when it is not the caller's)."""
        ok(resp, records.detail_of_user(uuid, req.context.principal.name))


class LinkRows:
    """The rows a link's token opens (no key needed)."""

    @requires("public")
    @takes(answers=(400, 404))
    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """List every approver's row of the task of the link's approval (`token`: the last
        segment of the link; a used link is a 404)."""
        ok(resp, records.siblings(records.by_token(token)))


class LinkStatus:
    """One approval through its link (no key needed)."""

    @requires("public")
    @takes(answers=(400, 404))
    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """Show the link's approval row (a used link is a 404)."""
        ok(resp, {**records.shown(records.by_token(token)), "checkcode": ""})


class LinkOpinion:
    """Decide through a link (no key needed)."""

    @requires("public")
    @takes(LINK_OPINION, answers=(404, 409))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Agree or refuse as the approver the link was sent to: `uuid` is the link's token
        (its last path segment), used once."""
        values = check(params(req), LINK_OPINION)
        records.opinion_by_token(values["uuid"], values["opinion"], req.remote_addr or "")
        ok(resp, 1)


class Fast:
    """The page of an approval link: the text, and agree / refuse buttons."""

    @requires("public")
    @takes(FAST, produces=("text/html",), answers=(400, 404))
    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """Show the approval the link's token opens, with agree and refuse buttons (a GET
        never decides: mail scanners fetch links)."""
        _page(resp, records.shown(records.by_token(token)), "")

    @requires("public")
    @takes(FAST, produces=("text/html",), answers=(400, 404, 409))
    def on_post(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """Agree or refuse (`opinion`) as the approver the link was sent to; the token is
        then used up."""
        opinion = check(params(req), FAST)["opinion"]
        row = records.opinion_by_token(token, opinion, req.remote_addr or "")
        _page(resp, records.shown(row), "done")


def _page(resp: falcon.Response, row: dict[str, Any], done: str) -> None:
    text, color = STATUS.get(row["opinion"], ("waiting for your opinion", "#24b0a0"))
    closed = 'disabled="disabled"' if done or row["opinion"] != "unconfirmed" else ""
    cont = html.escape(row["cont"] or "").replace("\n", "<br>")
    resp.content_type = "text/html; charset=utf-8"
    resp.text = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>approval {html.escape(row["name"])}</title></head>
<body style="font-size: 2em">
{html.escape(str(row["create_time"]))}<br>{html.escape(row["name"])}
 (asked by {html.escape(row["submitter"])})<hr>{cont}<hr>
status: <b style="color: {color}" id="opinion">{text}</b><hr>
<form method="post">
<button name="opinion" value="agree" style="width:49%;height:3em" {closed}>agree</button>
<button name="opinion" value="refuse" style="width:49%;height:3em" {closed}>refuse</button>
</form></body></html>
"""


ROUTES = [
    ("/approval", Mine()),
    ("/approval/control", LinkOpinion()),
    ("/approval/control/status/{token}", LinkStatus()),
    ("/approval/control/{token}", LinkRows()),
    ("/approval/fast/{token}", Fast()),
    ("/approval/{uuid}", OfTask()),
]
