"""/vv: version variables that nodes report (``NAME:[value]``), and their analysis."""

import falcon

from api.http.access import requires
from api.http.declare import takes
from api.http.envelope import ok
from api.http.params import params
from engine.insight import versions
from engine.store import listing


class Collection:
    """Version variables of a project."""

    @requires("read")
    @takes(versions.FILTERS, listing.PAGING)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List version variables, newest first (filters: node, name, time_start, time_end on
        the update time; paging)."""
        ok(resp, versions.list_values(projectid, params(req)))


class Table:
    """Version variables as a node-by-name table."""

    @requires("read")
    @takes(versions.FILTERS)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Show a table: a header ["NODE", name, ...], then one row per node, null where a
        node has no value (same filters as the list)."""
        frame = versions.table(projectid, params(req))
        rows = [["NODE", *frame.columns]]
        rows += [
            [node, *values] for node, values in zip(frame.index, frame.values.tolist(), strict=True)
        ]
        ok(resp, rows)


class Values:
    """Distinct values."""

    @requires("read")
    @takes(versions.LIST)
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """List the distinct values, newest first, without Do_* markers (appname narrows to
        APP_<appname>_VERSION)."""
        ok(resp, versions.distinct_values(projectid, params(req)))


class VersionShare:
    """Which versions the nodes run."""

    @requires("read")
    @takes()
    def on_get(self, req: falcon.Request, resp: falcon.Response, projectid: int) -> None:
        """Share of nodes per value of VERSION and APP_*_VERSION over the last 365 days:
        [{name, data: {value: percent}}]."""
        frame = versions.version_share(projectid)
        data = [
            {
                "name": name,
                "data": {v: f"{p:.2f}" for v, p in zip(g["value"], g["percent"], strict=True)},
            }
            for name, g in frame.groupby("name", sort=True)
        ]
        ok(resp, data)


class Node:
    """Version variables of one node."""

    @requires("delete")
    @takes()
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, projectid: int, node: str
    ) -> None:
        """Delete every version variable of a node."""
        versions.delete_node(projectid, node)
        ok(resp, "delete success")


ROUTES = [
    ("/vv/{projectid:int}", Collection()),
    ("/vv/{projectid:int}/table", Table()),
    ("/vv/{projectid:int}/list", Values()),
    ("/vv/{projectid:int}/analysis/version", VersionShare()),
    ("/vv/{projectid:int}/{node}", Node()),
]
