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
import time
import urllib.error
import urllib.parse
import urllib.request

import pandas as pd

FINAL = ("success", "fail", "refuse")
DECISIONS = ("running", "ignore", "fail")  # retry the failed hosts, go on, or stop
ANALYSIS = ("last", "date", "hour", "runtime", "statistics")


class ClientError(Exception):
    """A call failed. ``status`` is the HTTP status (0: the server was not reached or the
    client refused the call itself) and ``info`` the explanation, the server's when it sent one."""

    def __init__(self, status, info):
        super().__init__(f"HTTP {status}: {info}" if status else info)
        self.status = status
        self.info = info


def _quote(part):
    return urllib.parse.quote(str(part), safe="")


def _query(params):
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

    def __init__(self, client, root, list_suffix=""):
        self.client = client
        self.root = root
        self.list_suffix = list_suffix

    def path(self, projectid, *parts):
        pid = self.client.project_id(projectid)
        return "/".join([f"/{self.root}", str(pid), *(_quote(p) for p in parts)])

    def list(self, projectid=None, **filters):
        """Return the group's rows as a DataFrame (the group's filters and paging apply)."""
        rows = self.client.call("GET", self.path(projectid) + self.list_suffix, **filters)
        return pd.DataFrame(rows or [])

    def get(self, item, projectid=None):
        """Return one item."""
        return self.client.call("GET", self.path(projectid, item))

    def add(self, projectid=None, **fields):
        """Create an item; return the whole answer (some groups put the new id beside data)."""
        return self.client.envelope("POST", self.path(projectid), **fields)

    def edit(self, item, projectid=None, **fields):
        """Change an item."""
        return self.client.envelope("POST", self.path(projectid, item), **fields)

    def delete(self, item, projectid=None, **params):
        """Delete an item."""
        return self.client.envelope("DELETE", self.path(projectid, item), **params)


class Client:
    """One server, one key, and optionally a default project for every call."""

    def __init__(self, url, key, projectid=None, timeout=30):
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

    def envelope(self, method, path, **params):
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
    def _answer(method, path, status, raw):
        """Return the parsed envelope of a success, or raise ClientError with its info."""
        try:
            answer = json.loads(raw or b"null")
        except ValueError:
            raise ClientError(status, raw[:200].decode(errors="replace")) from None
        if status >= 400 or not isinstance(answer, dict) or answer.get("stat") is not True:
            info = answer.get("info") if isinstance(answer, dict) else None
            raise ClientError(status if status >= 400 else 0, info or f"{method} {path} failed")
        return answer

    def _send(self, method, path, query=None, body=None, content_type=None):
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

    def call(self, method, path, **params):
        """Send one request; return its ``data``."""
        return self.envelope(method, path, **params).get("data")

    def project_id(self, projectid=None):
        """Return ``projectid``, or the client's default project."""
        pid = self.projectid if projectid is None else projectid
        if pid is None:
            raise ClientError(0, "projectid: give one, or create the Client with projectid=")
        return int(pid)

    # -- projects, environment, variables --------------------------------------------------

    def project(self, projectid=None):
        """Return a project."""
        return self.call("GET", f"/project/{self.project_id(projectid)}")

    def environment(self):
        """Return the platform environment (admin)."""
        return self.call("GET", "/environment")

    def set_environment(self, **values):
        """Change platform environment values (admin)."""
        return self.call("POST", "/environment", **values)

    def variables(self, jobuuid, projectid=None, **filters):
        """Return a job's variables as a DataFrame (name, value, describe, option, ...)."""
        pid = self.project_id(projectid)
        return pd.DataFrame(self.call("GET", f"/variable/{pid}/{_quote(jobuuid)}", **filters))

    def set_variables(self, jobuuid, data, projectid=None):
        """Bulk-update a job's variables: ``data`` is ``[{name, value, describe}]``."""
        pid = self.project_id(projectid)
        return self.call("POST", f"/variable/{pid}/update", jobuuid=jobuuid, data=data)

    def nodeinfo(self, projectid=None):
        """Return the project's machines (its own, project 0's, its groups') as a DataFrame."""
        return pd.DataFrame(self.call("GET", f"/nodeinfo/{self.project_id(projectid)}"))

    # -- the file store --------------------------------------------------------------------

    def upload(self, files, projectid=None):
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
        return self._answer("POST", f"/fileserver/{pid}", status, raw).get("data")

    def download(self, name, projectid=None):
        """Return the bytes of file ``name`` of the project's file store."""
        pid = self.project_id(projectid)
        status, raw = self._send(
            "GET", f"/fileserver/{pid}/download", query={"name": name, "stream": 1}
        )
        if status >= 400:
            self._answer("GET", f"/fileserver/{pid}/download", status, raw)
        return raw

    # -- runs ------------------------------------------------------------------------------

    def tasks(self, projectid=None, **filters):
        """Return the project's tasks, newest first, as a DataFrame."""
        return pd.DataFrame(self.call("GET", f"/task/{self.project_id(projectid)}", **filters))

    def task(self, uuid, projectid=None):
        """Return the :class:`Task` ``uuid``, loaded."""
        return Task(self, self.project_id(projectid), uuid).refresh()

    def job_uuid(self, job, projectid=None):
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

    def run(self, job, variables=None, wait=True, projectid=None, timeout=600):
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

    def run_step(self, kind, wait=True, projectid=None, timeout=600, **fields):
        """Run a single ``cmd`` or ``scp`` step (OpenC3's plugin_cmd / plugin_scp)."""
        if kind not in ("cmd", "scp"):
            raise ClientError(0, "kind: must be cmd or scp")
        pid = self.project_id(projectid)
        data = self.call("POST", f"/task/{pid}/plugin_{kind}", **fields)
        return self._started(pid, data["uuid"], wait, timeout)

    def run_cmd(self, nodes, script, scripts_type="shell", argv="", wait=True, **fields):
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
        nodes,
        source,
        playbook="site.yml",
        variables=None,
        wait=True,
        projectid=None,
        timeout=600,
        **fields,
    ):
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

    def dry_run(self, job, variables=None, projectid=None):
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

    def redo(self, uuid, wait=True, projectid=None, timeout=600):
        """Run a task again; return the new :class:`Task`."""
        pid = self.project_id(projectid)
        answer = self.envelope("POST", f"/task/{pid}/redo", taskuuid=uuid)
        return self._started(pid, answer["uuid"], wait, timeout)

    def _started(self, projectid, uuid, wait, timeout):
        task = Task(self, projectid, uuid)
        return task.wait(timeout=timeout) if wait else task.refresh()

    def control(self, taskuuid, subtaskuuid, subtasktype, control, projectid=None):
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

    def log(self, uuid, offset=0):
        """Return a task's log from ``offset``: ``{log, offset, done, status}``."""
        return self.call("GET", f"/slave/any/tasklog/{_quote(uuid)}", offset=offset)

    def kill(self, uuid):
        """Stop a task; return the server's message."""
        return self.envelope("DELETE", f"/slave/any/killtask/{_quote(uuid)}").get("info")

    # -- history ---------------------------------------------------------------------------

    def analysis(self, kind, projectid=None, **params):
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

    def vv(self, projectid=None, **filters):
        """Return version variables (filters: node, name, time_start, time_end, paging)."""
        rows = self.call("GET", f"/vv/{self.project_id(projectid)}", **filters)
        return pd.DataFrame(rows, columns=["id", "node", "name", "value", "update_time"])

    def vv_table(self, projectid=None, **filters):
        """Return the node-by-name version table (index NODE, None where a node has no value)."""
        rows = self.call("GET", f"/vv/{self.project_id(projectid)}/table", **filters)
        frame = pd.DataFrame(rows[1:], columns=rows[0], dtype=object).set_index("NODE")
        return frame.sort_index()

    def vv_versions(self, projectid=None):
        """Return the share of nodes per value of VERSION and APP_*_VERSION: name, value,
        percent."""
        data = self.call("GET", f"/vv/{self.project_id(projectid)}/analysis/version")
        rows = [(d["name"], v, float(p)) for d in data for v, p in d["data"].items()]
        return pd.DataFrame(rows, columns=["name", "value", "percent"])

    def vv_values(self, projectid=None, appname=None):
        """Return the distinct values reported, newest first (without Do_* markers)."""
        data = self.call("GET", f"/vv/{self.project_id(projectid)}/list", appname=appname)
        return pd.DataFrame({"value": data})

    def vv_delete(self, node, projectid=None):
        """Delete every version variable of ``node``."""
        return self.call("DELETE", f"/vv/{self.project_id(projectid)}/{_quote(node)}")


class Task:
    """One run on the server. ``refresh()`` reloads it; the properties read live data."""

    def __init__(self, client, projectid, uuid):
        self.client = client
        self.projectid = projectid
        self.uuid = uuid
        self.data = {}
        self._log = ""
        self._offset = 0

    def __repr__(self):
        return f"<Task {self.uuid} {self.status or '?'}>"

    @property
    def status(self):
        """The status at the last refresh."""
        return self.data.get("status")

    @property
    def done(self):
        """Whether the task ended (success, fail or refuse) at the last refresh."""
        return self.status in FINAL

    def refresh(self):
        """Reload the task from the server; return it."""
        self.data = self.client.call("GET", f"/task/{self.projectid}/{self.uuid}")
        return self

    def stopped(self):
        """Whether the task (as last loaded) ended, or waits for a human: a step decision or
        a pause. A task woken by a control call is still ``waiting`` until a worker takes it
        up, and does not count."""
        if self.status in FINAL:
            return True
        return self.status == "waiting" and self.awaiting() is not None

    def awaiting(self):
        """Return the step that waits for a human (a decision or a pause), or None."""
        for step in self.steps:
            if step["status"] == "decision":
                return step
            if step["pause"] and step["status"] in ("success", "ignore"):
                return step
        return None

    def wait(self, timeout=600, interval=0.3, until=None):
        """Refresh until the task ended or waits for a human; with ``until``, until its
        status is one of those."""
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            if self.stopped() if until is None else self.status in until:
                return self
            if time.monotonic() > deadline:
                raise ClientError(0, f"task {self.uuid}: still {self.status} after {timeout} s")
            time.sleep(interval)

    @property
    def text(self):
        """The log text fetched so far (see :meth:`tail` and :meth:`log`)."""
        return self._log

    def tail(self):
        """Return the log text written since the last tail (or log) call."""
        page = self.client.log(self.uuid, offset=self._offset)
        self._log += page["log"]
        self._offset = page["offset"]
        return page["log"]

    def log(self):
        """Return the whole log so far, fetching only what is new."""
        while self.tail():
            pass
        return self._log

    @property
    def hosts(self):
        """Per-host results of every step and attempt, in the order they ran (a DataFrame)."""
        rows = self.client.call("GET", f"/task/{self.projectid}/{self.uuid}/hosts")
        columns = ["step", "attempt", "host", "status", "rc", "starttime", "finishtime"]
        frame = pd.DataFrame(rows, columns=[*columns, "stdout", "stderr"])
        return frame

    @property
    def steps(self):
        """The steps of a job task with their status (empty for a single-step task)."""
        rows = self.client.call("GET", f"/subtask/{self.projectid}/{self.uuid}")
        return [{**r, "name": (r.get("extended") or {}).get("name", "")} for r in rows]

    def pending(self, action):
        """Return the step that ``action`` would apply to, or None."""
        for step in self.steps:
            if action == "next" and step["pause"] and step["status"] is not None:
                return step
            if action in DECISIONS and step["status"] == "decision":
                return step
        return None

    def control(self, action):
        """Apply ``action`` to the waiting step: next, running (retry the failed hosts),
        ignore or fail."""
        if action not in ("next", *DECISIONS):
            raise ClientError(0, "control: must be one of next, running, ignore, fail")
        step = self.pending(action)
        if step is None:
            raise ClientError(409, f"control: no step of task {self.uuid} waits for {action}")
        self.client.control(
            self.uuid, step["uuid"], step["subtask_type"], action, projectid=self.projectid
        )
        return self.refresh()

    def kill(self):
        """Stop the task; return the server's message."""
        message = self.client.kill(self.uuid)
        self.refresh()
        return message
