"""A Python client for the opsjob HTTP API, for scripts and notebooks.

Every route is one ``call(method, path, **params)`` away; named helpers cover each route
group, return pandas DataFrames for lists, analysis and version variables, and wrap runs in
:class:`Task` objects. Any failure raises :class:`ClientError`, which carries the server's
``info`` and the HTTP status.

    client = Client("http://127.0.0.1:8080", key, projectid=1)
    task = client.run("deploy", {"version": "1.2.3"})      # a job, by name or uuid
    task.status, task.hosts, task.log()
    client.analysis("date")                                  # a DataFrame
"""

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pandas as pd

from api.client.frames import ANALYSIS, Reports, _quote
from api.client.shapes import Envelope, LogPage, Plan, Project
from api.client.task import DECISIONS, FINAL, ClientError, Task

__all__ = ["ANALYSIS", "DECISIONS", "FINAL", "Client", "ClientError", "Group", "Task"]


def _query(params: Mapping[str, Any]) -> str:
    pairs = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        pairs.append((name, value))
    return urllib.parse.urlencode(pairs)


class Group:
    """The routes of one catalog group: ``/<root>/:projectid[/:item]``."""

    def __init__(self, client: "Client", root: str, list_suffix: str = "") -> None:
        self.client = client
        self.root = root
        self.list_suffix = list_suffix

    def path(self, projectid: int | None, *parts: object) -> str:
        pid = self.client.project_id(projectid)
        return "/".join([f"/{self.root}", str(pid), *(_quote(p) for p in parts)])

    def list(self, projectid: int | None = None, **filters: Any) -> pd.DataFrame:
        """Return the group's rows as a DataFrame (the group's filters and paging apply)."""
        rows = self.client.call("GET", self.path(projectid) + self.list_suffix, **filters)
        return pd.DataFrame(rows or [])

    def get(self, item: str | int, projectid: int | None = None) -> Any:
        """Return one item."""
        return self.client.call("GET", self.path(projectid, item))

    def add(self, projectid: int | None = None, **fields: Any) -> Envelope:
        """Create an item; return the whole answer (some groups put the new id beside data)."""
        return self.client.envelope("POST", self.path(projectid), **fields)

    def edit(self, item: str | int, projectid: int | None = None, **fields: Any) -> Envelope:
        """Change an item."""
        return self.client.envelope("POST", self.path(projectid, item), **fields)

    def delete(self, item: str | int, projectid: int | None = None, **params: Any) -> Envelope:
        """Delete an item."""
        return self.client.envelope("DELETE", self.path(projectid, item), **params)


class Client(Reports):
    """One server, one key, and optionally a default project for every call."""

    def __init__(
        self, url: str, key: str, projectid: int | None = None, timeout: float = 30
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.projectid = projectid
        self.timeout = timeout
        self.jobs = Group(self, "jobs")
        self.scripts = Group(self, "scripts")
        self.crontab = Group(self, "crontab")
        self.nodegroup = Group(self, "nodegroup")
        self.nodelist = Group(self, "nodelist")
        self.userlist = Group(self, "userlist")
        self.notify = Group(self, "notify")
        self.token = Group(self, "token", list_suffix="/info")
        self.credential = Group(self, "credential")
        self.fileserver = Group(self, "fileserver")

    # -- the one request -------------------------------------------------------------------

    def envelope(self, method: str, path: str, **params: Any) -> Envelope:
        """Send one request; return the whole answer ``{"stat": true, "data": ..., ...}``.

        GET and DELETE send ``params`` as the query string, POST and PUT as a JSON body.
        """
        method = method.upper()
        if method in ("GET", "DELETE"):
            status, raw = self._send(method, path, query=params)
        else:
            status, raw = self._send(
                method, path, body=json.dumps(params).encode(), content_type="application/json"
            )
        return self._answer(method, path, status, raw)

    @staticmethod
    def _answer(method: str, path: str, status: int, raw: bytes) -> Envelope:
        """Return the parsed envelope of a success, or raise ClientError with its info."""
        try:
            answer: Envelope = json.loads(raw or b"null")
        except ValueError:
            raise ClientError(status, raw[:200].decode(errors="replace")) from None
        if status >= 400 or not isinstance(answer, dict) or answer.get("stat") is not True:
            info = answer.get("info") if isinstance(answer, dict) else None
            raise ClientError(status if status >= 400 else 0, info or f"{method} {path} failed")
        return answer

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; return ``(status, raw body)`` (any HTTP status)."""
        url = self.url + path
        encoded = _query(query or {})
        if encoded:
            url += ("&" if "?" in url else "?") + encoded
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        request.add_header("Accept", "application/json")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise ClientError(0, f"{method} {url}: {getattr(e, 'reason', e)}") from None

    def call(self, method: str, path: str, **params: Any) -> Any:
        """Send one request; return its ``data``."""
        return self.envelope(method, path, **params).get("data")

    def project_id(self, projectid: int | None = None) -> int:
        """Return ``projectid``, or the client's default project."""
        pid = self.projectid if projectid is None else projectid
        if pid is None:
            raise ClientError(0, "projectid: give one, or create the Client with projectid=")
        return int(pid)

    # -- projects, environment, variables --------------------------------------------------

    def project(self, projectid: int | None = None) -> Project:
        """Return a project."""
        return self.call("GET", f"/project/{self.project_id(projectid)}")

    def environment(self) -> dict[str, str]:
        """Return the platform environment (admin)."""
        return self.call("GET", "/environment")

    def set_environment(self, **values: str) -> int:
        """Change platform environment values (admin)."""
        return self.call("POST", "/environment", **values)

    def variables(self, jobuuid: str, projectid: int | None = None, **filters: Any) -> pd.DataFrame:
        """Return a job's variables as a DataFrame (name, value, describe, option, ...)."""
        pid = self.project_id(projectid)
        return pd.DataFrame(self.call("GET", f"/variable/{pid}/{_quote(jobuuid)}", **filters))

    def set_variables(
        self, jobuuid: str, data: Sequence[Mapping[str, Any]], projectid: int | None = None
    ) -> None:
        """Bulk-update a job's variables: ``data`` is ``[{name, value, describe}]``."""
        pid = self.project_id(projectid)
        return self.call("POST", f"/variable/{pid}/update", jobuuid=jobuuid, data=data)

    def nodeinfo(self, projectid: int | None = None) -> pd.DataFrame:
        """Return the project's machines (its own, project 0's, its groups') as a DataFrame."""
        return pd.DataFrame(self.call("GET", f"/nodeinfo/{self.project_id(projectid)}"))

    # -- the file store --------------------------------------------------------------------

    def upload(self, files: Mapping[str, bytes], projectid: int | None = None) -> int:
        """Store ``files`` (``{name: bytes}``) in the project's file store."""
        boundary = f"opsjob{secrets.token_hex(16)}"
        body = b""
        for name, content in files.items():
            quoted = str(name).replace('"', "%22")
            body += (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="{quoted}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                ).encode()
                + bytes(content)
                + b"\r\n"
            )
        body += f"--{boundary}--\r\n".encode()
        pid = self.project_id(projectid)
        status, raw = self._send(
            "POST",
            f"/fileserver/{pid}",
            body=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
        return cast(int, self._answer("POST", f"/fileserver/{pid}", status, raw).get("data"))

    def download(self, name: str, projectid: int | None = None) -> bytes:
        """Return the bytes of file ``name`` of the project's file store."""
        pid = self.project_id(projectid)
        status, raw = self._send(
            "GET", f"/fileserver/{pid}/download", query={"name": name, "stream": 1}
        )
        if status >= 400:
            self._answer("GET", f"/fileserver/{pid}/download", status, raw)
        return raw

    # -- runs ------------------------------------------------------------------------------

    def tasks(self, projectid: int | None = None, **filters: Any) -> pd.DataFrame:
        """Return the project's tasks, newest first, as a DataFrame."""
        return pd.DataFrame(self.call("GET", f"/task/{self.project_id(projectid)}", **filters))

    def task(self, uuid: str, projectid: int | None = None) -> Task:
        """Return the :class:`Task` ``uuid``, loaded."""
        return Task(self, self.project_id(projectid), uuid).refresh()

    def job_uuid(self, job: str, projectid: int | None = None) -> str | None:
        """Return the uuid of ``job`` (a job uuid or a job name), or None if there is none."""
        pid = self.project_id(projectid)
        try:
            return self.call("GET", f"/jobs/{pid}/{_quote(job)}")["uuid"]
        except ClientError as e:
            if e.status != 404:
                raise
        found = self.jobs.list(pid, name=job)
        exact = found[found["name"] == job] if len(found) else found
        return exact["uuid"].iloc[0] if len(exact) else None

    def run(
        self,
        job: str,
        variables: Mapping[str, Any] | None = None,
        wait: bool = True,
        projectid: int | None = None,
        timeout: float = 600,
    ) -> Task:
        """Run a job (by name or uuid) with ``variables``; return its :class:`Task`.

        With ``wait`` the call returns once the task ended or waits for a human.
        """
        pid = self.project_id(projectid)
        jobuuid = self.job_uuid(job, pid)
        if jobuuid is None:
            raise ClientError(404, f"job: {job} does not exist in project {pid}")
        answer = self.envelope(
            "POST", f"/task/{pid}/job", jobuuid=jobuuid, variable=variables or {}
        )
        return self._started(pid, answer["uuid"], wait, timeout)

    def run_step(
        self,
        kind: str,
        wait: bool = True,
        projectid: int | None = None,
        timeout: float = 600,
        **fields: Any,
    ) -> Task:
        """Run a single ``cmd`` or ``scp`` step (OpenC3's plugin_cmd / plugin_scp)."""
        if kind not in ("cmd", "scp"):
            raise ClientError(0, "kind: must be cmd or scp")
        pid = self.project_id(projectid)
        data = self.call("POST", f"/task/{pid}/plugin_{kind}", **fields)
        return self._started(pid, data["uuid"], wait, timeout)

    def run_cmd(
        self,
        nodes: str | Sequence[str],
        script: str,
        scripts_type: str = "shell",
        argv: str = "",
        wait: bool = True,
        **fields: Any,
    ) -> Task:
        """Run ``script`` on ``nodes`` (a list or a comma list of names) as an ad-hoc step."""
        nodes = ",".join(nodes) if isinstance(nodes, list | tuple) else nodes
        fields.setdefault("name", "notebook cmd")
        return self.run_step(
            "cmd",
            wait=wait,
            node_type="builtin",
            node_cont=nodes,
            scripts_type=scripts_type,
            scripts_cont=script,
            scripts_argv=argv,
            **fields,
        )

    def run_playbook(
        self,
        nodes: str | Sequence[str],
        source: str,
        playbook: str = "site.yml",
        variables: Mapping[str, Any] | None = None,
        wait: bool = True,
        projectid: int | None = None,
        timeout: float = 600,
        **fields: Any,
    ) -> Task:
        """Run a playbook step on ``nodes``: ``source`` is ``fileserver:<name>``,
        ``git:<url>[#<ref>]`` or ``path:<dir>``, ``playbook`` the entry file inside it.

        ``variables`` reach the playbook as extra vars, never templated; ``fields`` are the
        step's other fields (tags, skip_tags, check, diff, verbosity, user, timeout). The
        step is saved as a one-step, non-permanent job, then run; return its :class:`Task`.
        """
        pid = self.project_id(projectid)
        nodes = ",".join(nodes) if isinstance(nodes, list | tuple) else nodes
        step = {
            "plugin_type": "playbook",
            "name": fields.pop("name", "notebook playbook"),
            "node_type": "builtin",
            "node_cont": nodes,
            "source": source,
            "playbook": playbook,
            **fields,
        }
        name = f"playbook-{secrets.token_hex(6)}"
        jobuuid = self.envelope("POST", f"/jobs/{pid}", name=name, permanent=0, data=[step])
        answer = self.envelope(
            "POST", f"/task/{pid}/job", jobuuid=jobuuid["uuid"], variable=variables or {}
        )
        return self._started(pid, answer["uuid"], wait, timeout)

    def dry_run(
        self, job: str, variables: Mapping[str, Any] | None = None, projectid: int | None = None
    ) -> Plan:
        """Plan the permanent job named ``job`` with ``variables`` without running it: its
        nodes, arguments and problems per step (a playbook step's source is fetched and
        syntax-checked, no node is contacted)."""
        answer = self.envelope(
            "POST",
            "/third/interface/dry-run",
            project_id=self.project_id(projectid),
            uuid=secrets.token_hex(6),
            retry_count=0,
            params={"jobname": job, "variable": variables or {}},
        )
        return answer["data"]

    def redo(
        self, uuid: str, wait: bool = True, projectid: int | None = None, timeout: float = 600
    ) -> Task:
        """Run a task again; return the new :class:`Task`."""
        pid = self.project_id(projectid)
        answer = self.envelope("POST", f"/task/{pid}/redo", taskuuid=uuid)
        return self._started(pid, answer["uuid"], wait, timeout)

    def _started(self, projectid: int, uuid: str, wait: bool, timeout: float) -> Task:
        task = Task(self, projectid, uuid)
        return task.wait(timeout=timeout) if wait else task.refresh()

    def control(
        self,
        taskuuid: str,
        subtaskuuid: str,
        subtasktype: str,
        control: str,
        projectid: int | None = None,
    ) -> int:
        """Decide a step (running = retry failed hosts, ignore, fail) or release a pause (next).

        next and running go by PUT, which the control role may use; ignore and fail need write.
        """
        return self.call(
            "PUT" if control in ("next", "running") else "POST",
            f"/subtask/{self.project_id(projectid)}",
            taskuuid=taskuuid,
            subtaskuuid=subtaskuuid,
            subtasktype=subtasktype,
            control=control,
        )

    def log(self, uuid: str, offset: int = 0) -> LogPage:
        """Return a task's log from ``offset``: ``{log, offset, done, status}``."""
        return self.call("GET", f"/slave/any/tasklog/{_quote(uuid)}", offset=offset)

    def kill(self, uuid: str) -> str | None:
        """Stop a task; return the server's message."""
        return self.envelope("DELETE", f"/slave/any/killtask/{_quote(uuid)}").get("info")
