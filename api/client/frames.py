"""The client's reads that come back as pandas DataFrames: task analysis and version
variables. :class:`api.client.Client` inherits them; they need its ``call`` and ``project_id``."""

import urllib.parse
from typing import TYPE_CHECKING, Any

import pandas as pd

from api.client.task import ClientError

ANALYSIS = ("last", "date", "hour", "runtime", "statistics")


def _quote(part: object) -> str:
    return urllib.parse.quote(str(part), safe="")


class Reports:
    """History and version variables as DataFrames (a part of :class:`api.client.Client`)."""

    if TYPE_CHECKING:

        def call(self, method: str, path: str, **params: Any) -> Any: ...
        def project_id(self, projectid: int | None = None) -> int: ...

    # -- history ---------------------------------------------------------------------------

    def analysis(self, kind: str, projectid: int | None = None, **params: Any) -> pd.DataFrame:
        """Return task analysis ``kind`` (last, date, hour, runtime, statistics) as a DataFrame.

        ``date`` takes ``all=1`` for every project, ``last`` takes ``count``.
        """
        if kind not in ANALYSIS:
            raise ClientError(0, f"kind: must be one of {', '.join(ANALYSIS)}")
        data = self.call("GET", f"/task/{self.project_id(projectid)}/analysis/{kind}", **params)
        if kind == "date":
            return pd.DataFrame(data, columns=["date", "total", "success"])
        if kind == "hour":
            return pd.DataFrame(data, columns=["hour", "count"])
        if kind == "runtime":
            return pd.DataFrame(
                {"bucket": list(data), "percent": [float(v) for v in data.values()]}
            )
        columns = ["id", "count", "name"] if kind == "statistics" else None
        frame = pd.DataFrame(data, columns=columns)
        if kind == "last" and len(frame):
            for column in ("starttime", "finishtime"):
                frame[column] = pd.to_datetime(frame[column])
            frame["runtime"] = pd.to_numeric(frame["runtime"])
        return frame

    def vv(self, projectid: int | None = None, **filters: Any) -> pd.DataFrame:
        """Return version variables (filters: node, name, time_start, time_end, paging)."""
        rows = self.call("GET", f"/vv/{self.project_id(projectid)}", **filters)
        return pd.DataFrame(rows, columns=["id", "node", "name", "value", "update_time"])

    def vv_table(self, projectid: int | None = None, **filters: Any) -> pd.DataFrame:
        """Return the node-by-name version table (index NODE, None where a node has no value)."""
        rows = self.call("GET", f"/vv/{self.project_id(projectid)}/table", **filters)
        frame = pd.DataFrame(rows[1:], columns=rows[0], dtype=object).set_index("NODE")
        return frame.sort_index()

    def vv_versions(self, projectid: int | None = None) -> pd.DataFrame:
        """Return the share of nodes per value of VERSION and APP_*_VERSION: name, value,
        percent."""
        data = self.call("GET", f"/vv/{self.project_id(projectid)}/analysis/version")
        rows = [(d["name"], v, float(p)) for d in data for v, p in d["data"].items()]
        return pd.DataFrame(rows, columns=["name", "value", "percent"])

    def vv_values(self, projectid: int | None = None, appname: str | None = None) -> pd.DataFrame:
        """Return the distinct values reported, newest first (without Do_* markers)."""
        data = self.call("GET", f"/vv/{self.project_id(projectid)}/list", appname=appname)
        return pd.DataFrame({"value": data})

    def vv_delete(self, node: str, projectid: int | None = None) -> str:
        """Delete every version variable of ``node``."""
        return self.call("DELETE", f"/vv/{self.project_id(projectid)}/{_quote(node)}")
