"""The audit trail over HTTP: a middleware that records each successful change, and GET /audit."""

import logging
from typing import Any

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.insight import audit
from engine.store import listing

log = logging.getLogger(__name__)

WRITES = ("POST", "PUT", "PATCH", "DELETE")
# Write-method routes that change nothing: lookups OpenC3 clients send as POST, and the
# single-use tickets that only open a websocket (the console itself is audited line by line).
READS = {
    ("POST", "/token/{projectid:int}/info"),
    ("POST", "/third/option/jobname"),
    ("POST", "/third/option/variable"),
    ("POST", "/third/interface/dry-run"),
    ("POST", "/third/interface/query"),
    ("POST", "/slave/ws/ticket"),
    ("POST", "/cmd/{projectid:int}/ticket"),
    # opinions: engine.approval.records records them itself, naming the approver
    ("POST", "/approval"),
    ("POST", "/approval/control"),
    ("POST", "/approval/fast/{token}"),
}
ID_KEYS = ("uuid", "id", "keyid", "taskuuid")


def object_of(template: str) -> str:
    """Name the object a route changes: its first literal path segment (``uploadv2`` skipped)."""
    parts = [p for p in template.split("/") if p and not p.startswith("{")]
    parts = [p for p in parts if p != "uploadv2"] or ["-"]
    return parts[0]


def object_id_of(req: falcon.Request, resp: falcon.Response, template: str) -> str:
    """Name the changed object: the route's own ids (not the project, never a secret), then
    an id the reply names (a new row's id or uuid)."""
    ids = [
        str(v)
        for k, v in (req.context.get("route_ids") or {}).items()
        if k != "projectid" and not audit.is_secret(k)
    ]
    media = resp.media if isinstance(resp.media, dict) else {}
    data = media.get("data")
    found = media.get("uuid")
    if found is None and isinstance(data, dict):
        found = next((data[k] for k in ID_KEYS if isinstance(data.get(k), (int, str))), None)
    if found is not None and str(found) not in ids:
        ids.append(str(found))
    return "/".join(ids)


class Audit:
    """Record one audit entry for every write request that succeeded."""

    def process_resource(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: object,
        route_params: dict[str, Any],
    ) -> None:
        req.context.route_ids = dict(route_params or {})

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        template = req.uri_template
        if not req_succeeded or req.method not in WRITES or template is None:
            return
        if (req.method, template) in READS or not 200 <= resp.status_code < 300:
            return
        if isinstance(resp.media, dict) and resp.media.get("stat") is False:
            return
        principal = req.context.get("principal")
        ids = req.context.get("route_ids") or {}
        fields = dict(req.context.get("params") or {})
        try:
            audit.record(
                user=principal.name if principal else "",
                key_id=principal.key_id if principal else 0,
                source=req.remote_addr or "",
                via="api",
                method=req.method,
                route=template,
                obj=object_of(template),
                object_id=object_id_of(req, resp, template),
                projectid=audit.project_of(
                    ids.get("projectid", fields.get("project_id")), {**fields, **ids}
                ),
                status=resp.status_code,
                fields=fields,
            )
        except Exception:  # the change is made: say loudly that its entry is missing
            log.exception("audit: could not record %s %s", req.method, template)


class Trail:
    """The audit trail."""

    @requires("login")
    @takes(audit.FILTERS, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List changes, newest first (filters: project, user, object, time_start, time_end
        as YYYY-MM-DD; paging). Admins see all; with the delete role on a project, pass
        `project` to see that project's entries."""
        ok(resp, audit.entries(req.context.principal, params(req)))


ROUTES = [("/audit", Trail())]
